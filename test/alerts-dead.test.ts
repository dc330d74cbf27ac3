/**
 * Alerts that never jam: a notification the receiver refuses for good (a 4xx other than 408/429),
 * one that failed TIERWATCH_WEBHOOK_MAX_ATTEMPTS times, or one older than TIERWATCH_WEBHOOK_MAX_AGE
 * is given up (`dead`) and the later ones to the same URL go on. Dead ones show in `tierwatch
 * alerts`, the metrics and the log (never with the URL's path), and `tierwatch alerts retry|drop`
 * act on them under the writer lock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Alerting } from '../src/alerts/alerting.ts';
import { listOutbox } from '../src/alerts/outbox.ts';
import { SweepMetrics } from '../src/collect/metrics.ts';
import { acquireWriterLock } from '../src/store/writer-lock.ts';
import { openDatabase } from '../src/store/db.ts';
import { afterCommit, alertHistory, Receiver, sweep, tier } from './alerts-fixture.ts';
import { runCliCaptured, startHarness, type Harness } from './helpers/harness.ts';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);
const BASE = [tier('META-USD', '20', 0.05, 0.025, 100_000), tier('BTC-USD', '50', 0.02, 0.01, 1_000_000)];

/** The outbox as `tierwatch alerts --format json` shows it. */
async function outbox(env: Record<string, string>): Promise<Array<Record<string, any>>> {
  const run = await runCliCaptured(['alerts', '--format', 'json'], { env });
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as Array<Record<string, any>>;
}

async function withReceiver(
  work: (h: Harness, receiver: Receiver, env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const h = await startHarness();
  const receiver = new Receiver();
  await receiver.listen();
  try {
    h.db.close();
    const env = { ...h.env, TIERWATCH_WEBHOOK_URL: receiver.url, TIERWATCH_WEBHOOK_RETRIES: '2' };
    // Run 1 is the account's baseline, which is never alerted; one tier other than META-USD is then
    // edited, so the test's first collect (run 2) has a change to send.
    const baseline = await runCliCaptured(['collect'], { env });
    assert.equal(baseline.code, 0, baseline.stderr);
    assert.equal(receiver.requests.length, 0, 'the baseline is not alerted');
    const other = h.sim.tiers().find((row) => row.symbol !== 'META-USD')!;
    h.sim.editTier('primary', other.symbol, other.leverage, { max_notional: other.max_notional / 2 });
    await work(h, receiver, env);
  } finally {
    await receiver.close();
    await h.close();
  }
}

test('a notification the receiver answers 400 is dead at once; the next one to that URL is delivered', async () => {
  await withReceiver(async (h, receiver, env) => {
    receiver.behaviour = (index) => (index === 0 ? 400 : 'ok');
    const first = await runCliCaptured(['collect'], { env });
    assert.equal(first.code, 0, 'a dead notification never fails the collect');
    assert.equal(receiver.requests.length, 1, 'a 400 is not retried: the same bytes would be refused again');

    const warn = first.logs.lines.find((line) => String(line.msg).includes('is dead'));
    assert.ok(warn, first.logs.text());
    assert.equal(warn.level, 'warn');
    assert.equal(warn.deadReason, 'rejected');
    assert.match(String(warn.msg), /HTTP 400/);
    assert.match(String(warn.msg), /tierwatch alerts retry 1/);
    assert.doesNotMatch(
      first.logs.text(),
      /secret-path-token/,
      'the URL path (a credential for Slack) is never logged',
    );

    h.sim.editTier('primary', 'META-USD', '20', { max_notional: 50_000 });
    assert.equal((await runCliCaptured(['collect'], { env })).code, 0);
    assert.equal(receiver.requests.length, 2);
    assert.equal(receiver.distinct().length, 2, 'the second request is the next notification, not the dead one again');
    assert.equal(receiver.bodies()[1]!.changes[0].symbol, 'META-USD');

    const rows = await outbox(env);
    assert.deepEqual(
      rows.map((row) => row.status),
      ['dead', 'delivered'],
    );
    assert.equal(rows[0]!.attempts, 1);
    assert.match(rows[0]!.dead_reason, /refused it for good: answered HTTP 400/);
    assert.ok(rows[0]!.dead_at);
    assert.doesNotMatch(JSON.stringify(rows), /secret-path-token/);

    const table = await runCliCaptured(['alerts', '--format', 'table'], { env });
    assert.match(table.stdout, /dead/);
    assert.match(table.stdout, /0 pending, 1 dead of 2 shown/);
    assert.match(table.stdout, /tierwatch alerts retry ID\|--dead/);
    const deadOnly = await runCliCaptured(['alerts', '--dead', '--format', 'json'], { env });
    assert.deepEqual(
      JSON.parse(deadOnly.stdout).map((row: any) => row.outbox_id),
      [1],
    );
  });
});

test('408 and 429 are retried like a 5xx; other 4xx (401, 404, 413) are dead; a notification failing every time is dead after TIERWATCH_WEBHOOK_MAX_ATTEMPTS', async () => {
  const history = alertHistory();
  const receiver = new Receiver();
  await receiver.listen();
  const metrics = new SweepMetrics({ processMetrics: false });
  let now = at(0);
  let ids = 0;
  const config = history.config({
    TIERWATCH_WEBHOOK_URL: receiver.url,
    TIERWATCH_WEBHOOK_RETRIES: '2',
    TIERWATCH_WEBHOOK_MAX_ATTEMPTS: '5',
  });
  const alerting = new Alerting(config, {
    db: history.db,
    store: history.store,
    logger: history.logger,
    now: () => now,
    newId: () => `n-${++ids}`,
    counters: metrics,
  });
  const run = async (tiers: typeof BASE, minutes: number) => {
    now = at(minutes);
    sweep(history.store, tiers, now);
    await afterCommit();
    await alerting.idle();
  };
  try {
    sweep(history.store, [], at(-1)); // the account's baseline (its first sweep): never alerted
    alerting.start();
    // 408, then 429, then ok: three attempts of one pass, delivered.
    receiver.behaviour = (index) => (index === 0 ? 408 : index === 1 ? 429 : 'ok');
    await run(BASE, 0);
    assert.deepEqual(
      listOutbox(history.db).map((row) => [row.status, row.attempts]),
      [['delivered', 3]],
    );

    // Each of these is refused for good at its first attempt; the next run's notification still goes out.
    for (const [index, status] of [401, 404, 413].entries()) {
      receiver.behaviour = () => status;
      await run([tier('META-USD', '20', 0.05, 0.025, 90_000 - index), BASE[1]!], 5 + index);
    }
    assert.deepEqual(
      listOutbox(history.db).map((row) => [row.status, row.attempts]),
      [
        ['delivered', 3],
        ['dead', 1],
        ['dead', 1],
        ['dead', 1],
      ],
    );

    // 500 every time, 3 attempts per pass: pending after the first pass, dead at the 5th attempt (second pass).
    receiver.behaviour = () => 500;
    await run([tier('META-USD', '20', 0.05, 0.025, 70_000), BASE[1]!], 10);
    assert.deepEqual(
      listOutbox(history.db, { pendingOnly: true }).map((row) => row.attempts),
      [3],
    );
    await run([tier('META-USD', '20', 0.05, 0.025, 60_000), BASE[1]!], 15);
    const rows = listOutbox(history.db);
    assert.equal(rows[4]!.status, 'dead');
    assert.equal(rows[4]!.attempts, 5, 'no attempt beyond the limit');
    assert.match(
      rows[4]!.dead_reason!,
      /after 5 failed attempts \(TIERWATCH_WEBHOOK_MAX_ATTEMPTS=5\); last error: answered HTTP 500/,
    );
    assert.equal(rows[5]!.status, 'pending');
    assert.equal(rows[5]!.attempts, 3, 'the next one is tried in the same pass, no longer held back');

    const exposition = await metrics.registry.metrics();
    assert.match(exposition, /^tierwatch_alerts_dead 4$/m);
    assert.match(exposition, /^tierwatch_alerts_dead_total\{reason="rejected"\} 3$/m);
    assert.match(exposition, /^tierwatch_alerts_dead_total\{reason="attempts"\} 1$/m);
    assert.match(exposition, /^tierwatch_alerts_pending 1$/m);
  } finally {
    await alerting.stop();
    await receiver.close();
    history.close();
  }
});

test('a notification older than TIERWATCH_WEBHOOK_MAX_AGE is dead without another attempt, and the rest go on', async () => {
  const history = alertHistory();
  const receiver = new Receiver();
  await receiver.listen();
  let now = at(0);
  let ids = 0;
  const config = history.config({
    TIERWATCH_WEBHOOK_URL: receiver.url,
    TIERWATCH_WEBHOOK_RETRIES: '0',
    TIERWATCH_WEBHOOK_MAX_AGE: '2h',
  });
  const make = () =>
    new Alerting(config, {
      db: history.db,
      store: history.store,
      logger: history.logger,
      now: () => now,
      newId: () => `n-${++ids}`,
    });
  let alerting = make();
  try {
    alerting.start();
    receiver.behaviour = () => 503;
    sweep(history.store, [], new Date(now.getTime() - 60_000)); // the account's baseline: never alerted
    sweep(history.store, BASE, now);
    await afterCommit();
    await alerting.idle();
    assert.equal(receiver.requests.length, 1);
    await alerting.stop();

    // Three hours later the receiver is back; the old notification is given up unsent, the new one goes.
    receiver.behaviour = () => 'ok';
    now = at(180);
    alerting = make();
    alerting.start({ kick: false });
    sweep(history.store, [tier('META-USD', '20', 0.05, 0.025, 10_000), BASE[1]!], now);
    await afterCommit();
    await alerting.idle();
    const rows = listOutbox(history.db);
    assert.deepEqual(
      rows.map((row) => row.status),
      ['dead', 'delivered'],
    );
    assert.match(
      rows[0]!.dead_reason!,
      /not delivered within 2h of being queued \(TIERWATCH_WEBHOOK_MAX_AGE\); last error: answered HTTP 503/,
    );
    assert.equal(rows[0]!.attempts, 1, 'no attempt once too old');
    assert.equal(receiver.requests.length, 2);
    const warn = history.logs.lines.find((line) => line.deadReason === 'age');
    assert.ok(warn);
    assert.equal(warn.webhook, `http://127.0.0.1:${receiver.port}/…`);
  } finally {
    await alerting.stop();
    await receiver.close();
    history.close();
  }
});

test('`alerts retry ID|--dead` and `alerts drop ID` act on dead notifications under the writer lock; bad ids are usage errors', async () => {
  await withReceiver(async (h, receiver, env) => {
    receiver.behaviour = () => 400;
    assert.equal((await runCliCaptured(['collect'], { env })).code, 0);
    h.sim.editTier('primary', 'META-USD', '20', { max_notional: 50_000 });
    assert.equal((await runCliCaptured(['collect'], { env })).code, 0);
    receiver.behaviour = () => 'ok';
    h.sim.editTier('primary', 'META-USD', '20', { max_notional: 40_000 });
    assert.equal((await runCliCaptured(['collect'], { env })).code, 0);
    assert.deepEqual(
      (await outbox(env)).map((row) => row.status),
      ['dead', 'dead', 'delivered'],
    );

    const usage = async (args: string[], pattern: RegExp) => {
      const result = await runCliCaptured(['alerts', ...args], { env });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
    };
    await usage(['retry', '99'], /no notification 99 in the outbox/);
    await usage(['drop', '99'], /no notification 99 in the outbox/);
    await usage(['retry', '3'], /Notification 3 is delivered, not dead/);
    await usage(['drop', '3'], /Notification 3 is delivered, not dead/);
    await usage(['retry'], /a notification id or `--dead`/);
    await usage(['retry', '1', '--dead'], /a notification id or `--dead`/);
    await usage(['retry', 'one'], /`alerts retry ID` to be an integer/);
    await usage(['drop', '--dead'], /one notification id, not `--dead`/);
    await usage(['resend', '1'], /Unknown `alerts` action "resend"/);

    // While another writer (the daemon) holds the lock, nothing changes.
    const lock = acquireWriterLock(h.dbPath, 'tierwatch run');
    try {
      const locked = await runCliCaptured(['alerts', 'retry', '1'], { env });
      assert.equal(locked.code, 1);
      assert.match(locked.stderr, /being written by `tierwatch run`/);
    } finally {
      lock.release();
    }
    assert.deepEqual(
      (await outbox(env)).map((row) => row.status),
      ['dead', 'dead', 'delivered'],
    );

    const retried = await runCliCaptured(['alerts', 'retry', '2'], { env });
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /Retrying notification 2 \(changes, run 3\)/);
    let rows = await outbox(env);
    assert.deepEqual(
      rows.map((row) => [row.status, row.attempts, row.dead_reason]),
      [
        ['dead', 1, rows[0]!.dead_reason],
        ['pending', 0, null],
        ['delivered', 1, null],
      ],
    );

    // The next pass sends it (the receiver accepts it now).
    assert.equal((await runCliCaptured(['collect'], { env })).code, 0);
    rows = await outbox(env);
    assert.deepEqual(
      rows.map((row) => row.status),
      ['dead', 'delivered', 'delivered'],
    );
    assert.equal(JSON.parse(receiver.requests.at(-1)!.body).run.run_id, 3);

    const dropped = await runCliCaptured(['alerts', 'drop', '1'], { env });
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.match(dropped.stdout, /Dropped dead notification 1 \(changes, run 2\)/);
    assert.deepEqual(
      (await outbox(env)).map((row) => row.outbox_id),
      [2, 3],
    );

    const none = await runCliCaptured(['alerts', 'retry', '--dead'], { env });
    assert.equal(none.code, 0);
    assert.match(none.stdout, /No dead notifications/);
  });
});

test('`alerts retry --dead` puts every dead notification back; a missing database is not created', async () => {
  await withReceiver(async (h, receiver, env) => {
    receiver.behaviour = () => 410;
    assert.equal((await runCliCaptured(['collect'], { env })).code, 0);
    h.sim.editTier('primary', 'META-USD', '20', { max_notional: 50_000 });
    assert.equal((await runCliCaptured(['collect'], { env })).code, 0);
    assert.deepEqual(
      (await outbox(env)).map((row) => row.status),
      ['dead', 'dead'],
    );
    const result = await runCliCaptured(['alerts', 'retry', '--dead'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim().split('\n').length, 2);
    const db = openDatabase(h.dbPath, { readonly: true });
    try {
      assert.deepEqual(
        listOutbox(db).map((row) => [row.status, row.attempts]),
        [
          ['pending', 0],
          ['pending', 0],
        ],
      );
    } finally {
      db.close();
    }
    const missing = `${h.dir}/nothing-here.db`;
    const absent = await runCliCaptured(['alerts', 'retry', '1', '--db', missing], { env });
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /There is no database at/);
    assert.equal(await import('node:fs').then((fs) => fs.existsSync(missing)), false);
  });
});

test('settings: TIERWATCH_WEBHOOK_MAX_ATTEMPTS (default 50) and TIERWATCH_WEBHOOK_MAX_AGE (default 24h); bad values name the variable', async () => {
  const { loadConfig } = await import('../src/config.ts');
  const defaults = loadConfig({}).alerts;
  assert.deepEqual([defaults.maxAttempts, defaults.maxAgeMs], [50, 24 * 3_600_000]);
  const set = loadConfig({ TIERWATCH_WEBHOOK_MAX_ATTEMPTS: '7', TIERWATCH_WEBHOOK_MAX_AGE: '90m' }).alerts;
  assert.deepEqual([set.maxAttempts, set.maxAgeMs], [7, 90 * 60_000]);
  assert.throws(
    () => loadConfig({ TIERWATCH_WEBHOOK_MAX_ATTEMPTS: '0' }),
    (error: any) =>
      error.code === 'CONFIG_INVALID' &&
      /TIERWATCH_WEBHOOK_MAX_ATTEMPTS/.test(error.message) &&
      /"0"/.test(error.message),
  );
  assert.throws(
    () => loadConfig({ TIERWATCH_WEBHOOK_MAX_AGE: 'a day' }),
    (error: any) => error.code === 'CONFIG_INVALID' && /TIERWATCH_WEBHOOK_MAX_AGE/.test(error.message),
  );
});
