/**
 * Webhook delivery against a receiver on 127.0.0.1: one notification per run with changes, its
 * content and headers, nothing for an unchanged run, and at-least-once in-order delivery through
 * a receiver that is down, answers 500, or hangs past the timeout — also across a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Alerting } from '../src/alerts/alerting.ts';
import { listOutbox } from '../src/alerts/outbox.ts';
import { SweepMetrics } from '../src/collect/metrics.ts';
import { afterCommit, alertHistory, Receiver, sweep, tier } from './alerts-fixture.ts';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

const BASE = [tier('META-USD', '20', 0.05, 0.025, 100_000), tier('BTC-USD', '50', 0.02, 0.01, 1_000_000)];

/** The fake clock every Alerting in these tests reads. */
function clock(start = at(0)) {
  let now = start;
  return {
    now: () => now,
    set: (date: Date) => {
      now = date;
    },
  };
}

async function setup(env: Record<string, string> = {}, receivers = 1) {
  const history = alertHistory();
  const hooks: Receiver[] = [];
  for (let i = 0; i < receivers; i += 1) {
    const receiver = new Receiver();
    await receiver.listen();
    hooks.push(receiver);
  }
  const time = clock();
  let ids = 0;
  const config = history.config({ TIERWATCH_WEBHOOK_URL: hooks.map((hook) => hook.url).join(','), ...env });
  const make = () =>
    new Alerting(config, {
      db: history.db,
      store: history.store,
      logger: history.logger,
      now: time.now,
      newId: () => `n-${++ids}`,
    });
  return {
    history,
    receivers: hooks,
    receiver: hooks[0]!,
    time,
    config,
    make,
    async close(alerting?: Alerting) {
      await alerting?.stop();
      for (const hook of hooks) await hook.close();
      history.close();
    },
  };
}

test('a run with changes sends exactly one notification per URL with the run, the changes in the `changes` contract, and classifications', async () => {
  const s = await setup({ TIERWATCH_WEBHOOK_SECRET: 'whsec-test-123' }, 2);
  const alerting = s.make();
  try {
    alerting.start();
    sweep(s.history.store, [], at(-1)); // the account's baseline (its first sweep): never alerted
    sweep(s.history.store, BASE, at(0));
    await afterCommit();
    await alerting.idle();
    // The first sweep adds every tier: one notification, both tiers "loosening" (a tier added).
    for (const receiver of s.receivers) assert.equal(receiver.requests.length, 1);

    s.time.set(at(5));
    const runId = sweep(
      s.history.store,
      [
        tier('META-USD', '20', 0.05, 0.025, 50_000),
        tier('BTC-USD', '50', 0.01, 0.01, 2_000_000),
        tier('ETH-USD', '25', 0.04, 0.02, 500_000),
      ],
      at(5),
    );
    await afterCommit();
    await alerting.idle();
    for (const receiver of s.receivers) {
      assert.equal(receiver.requests.length, 2, 'one more notification, not one per change');
    }

    const request = s.receiver.requests[1]!;
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/hooks/secret-path-token');
    assert.equal(request.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(request.headers['x-tierwatch-event'], 'changes');
    const body = JSON.parse(request.body);
    assert.equal(request.headers['idempotency-key'], body.id);
    assert.equal(s.receivers[1]!.requests[1]!.body, request.body, 'every URL gets the same document');
    assert.deepEqual(body.run, { run_id: runId, account_id: 'primary', observed_at: at(5).toISOString() });
    assert.deepEqual(body.summary, { tightening: 1, loosening: 2, mixed: 0 });
    const bySymbol = Object.fromEntries(body.changes.map((change: any) => [change.symbol, change]));
    assert.deepEqual(bySymbol['META-USD'], {
      run_id: runId,
      observed_at: at(5).toISOString(),
      account_id: 'primary',
      symbol: 'META-USD',
      leverage: '20',
      change: 'changed',
      changed_columns: ['max_notional'],
      before: { initial_margin: 0.05, maintenance_margin: 0.025, max_notional: 100_000 },
      after: { initial_margin: 0.05, maintenance_margin: 0.025, max_notional: 50_000 },
      classification: 'tightening',
    });
    assert.equal(bySymbol['BTC-USD'].classification, 'loosening', 'margin down and notional up');
    assert.equal(bySymbol['ETH-USD'].change, 'added');
    assert.equal(bySymbol['ETH-USD'].before, null);
    assert.equal(bySymbol['ETH-USD'].classification, 'loosening');

    // The signature verifies with the documented recipe, computed here independently.
    const timestamp = String(request.headers['x-tierwatch-timestamp']);
    assert.equal(timestamp, String(Math.floor(at(5).getTime() / 1000)));
    const expected = `sha256=${createHmac('sha256', 'whsec-test-123').update(`${timestamp}.${request.body}`).digest('hex')}`;
    assert.equal(request.headers['x-tierwatch-signature'], expected);

    // An unchanged run sends nothing.
    s.time.set(at(10));
    sweep(
      s.history.store,
      [
        tier('META-USD', '20', 0.05, 0.025, 50_000),
        tier('BTC-USD', '50', 0.01, 0.01, 2_000_000),
        tier('ETH-USD', '25', 0.04, 0.02, 500_000),
      ],
      at(10),
    );
    await afterCommit();
    await alerting.idle();
    for (const receiver of s.receivers) assert.equal(receiver.requests.length, 2);
    assert.equal(listOutbox(s.history.db).filter((row) => row.status !== 'delivered').length, 0);
  } finally {
    await s.close(alerting);
  }
});

test('a sweep rolled back leaves no notification behind (outbox written in the sweep transaction)', async () => {
  const s = await setup();
  const alerting = s.make();
  try {
    alerting.start();
    sweep(s.history.store, [], at(-1)); // the account's baseline (its first sweep): never alerted
    sweep(s.history.store, BASE, at(0));
    await afterCommit();
    await alerting.idle();
    const runId = s.history.store.startRun({
      accountId: 'primary',
      endpoint: 'wss://sim.test',
      publicKey: null,
      startedAt: at(5),
    });
    // Removing every tier with a removal ratio of 0.1 is refused: MASS_REMOVAL, nothing stored.
    assert.throws(
      () =>
        s.history.store.commitSweep(runId, {
          accountId: 'primary',
          observedAt: at(5),
          finishedAt: at(5),
          tiers: [tier('X-USD', '1', 1, 1, 1)],
          pages: 1,
          maxRemovalRatio: 0.1,
        }),
      { code: 'MASS_REMOVAL' },
    );
    await afterCommit();
    await alerting.idle();
    assert.equal(listOutbox(s.history.db).length, 1);
    assert.equal(s.receiver.requests.length, 1);
  } finally {
    await s.close(alerting);
  }
});

test('a receiver answering 500 gets every notification later, once each, in run order; attempts are counted', async () => {
  const s = await setup();
  const metrics = new SweepMetrics({ processMetrics: false });
  const alerting = new Alerting(s.config, {
    db: s.history.db,
    store: s.history.store,
    logger: s.history.logger,
    now: s.time.now,
    counters: metrics,
  });
  try {
    s.receiver.behaviour = () => 500;
    alerting.start();
    sweep(s.history.store, [], at(-1)); // the account's baseline (its first sweep): never alerted
    const runs = [sweep(s.history.store, BASE, at(0))];
    await afterCommit();
    await alerting.idle();
    s.time.set(at(5));
    runs.push(sweep(s.history.store, [tier('META-USD', '20', 0.06, 0.025, 100_000), BASE[1]!], at(5)));
    await afterCommit();
    await alerting.idle();
    // Both still pending: the first holds back the second (order), so the second was never tried.
    const pending = listOutbox(s.history.db, { pendingOnly: true });
    assert.deepEqual(
      pending.map((row) => row.run_id),
      runs,
    );
    assert.equal(pending[0]!.attempts, 4, 'two passes × (first try + 1 retry)');
    assert.equal(pending[0]!.last_error, 'answered HTTP 500 Internal Server Error');
    assert.equal(pending[1]!.attempts, 0);
    assert.ok(s.receiver.requests.every((request) => JSON.parse(request.body).run.run_id === runs[0]));

    s.receiver.behaviour = () => 'ok';
    alerting.afterRun();
    await alerting.idle();
    assert.deepEqual(
      s.receiver.bodies().map((body) => body.run.run_id),
      runs,
      'each once, in order',
    );
    assert.equal(new Set(s.receiver.requests.map((r) => r.headers['idempotency-key'])).size, 2);
    assert.equal(listOutbox(s.history.db, { pendingOnly: true }).length, 0);
    const exposition = await metrics.registry.metrics();
    assert.match(exposition, /tierwatch_alert_deliveries_total\{result="failed"\} 4/);
    assert.match(exposition, /tierwatch_alert_deliveries_total\{result="delivered"\} 2/);
    assert.match(exposition, /tierwatch_alerts_pending 0/);
    assert.ok(
      s.history.logs.lines.some(
        (line) => line.level === 'warn' && String(line.msg).includes('webhook delivery failed'),
      ),
    );
  } finally {
    await s.close(alerting);
  }
});

test('a receiver that hangs past the timeout is given up on for that attempt and gets the notification on the retry', async () => {
  const s = await setup({ TIERWATCH_WEBHOOK_TIMEOUT: '1s' });
  const alerting = s.make();
  try {
    s.receiver.behaviour = (index) => (index === 0 ? 'hang' : 'ok');
    alerting.start();
    const started = performance.now();
    sweep(s.history.store, [], at(-1)); // the account's baseline (its first sweep): never alerted
    sweep(s.history.store, BASE, at(0));
    await afterCommit();
    await alerting.idle();
    // The receiver never answered the first request, so only the sender's timeout can have
    // ended that attempt (proved by events, not by a stopwatch). The bound below is
    // a guard against a hang, far above the 1 s timeout: a loaded machine may be slow.
    assert.equal(s.receiver.unanswered, 1, 'the receiver never answered the first request');
    assert.ok(performance.now() - started < 60_000, 'the 1 s timeout bounded the hanging attempt');
    const [row] = listOutbox(s.history.db);
    assert.equal(row!.status, 'delivered');
    assert.equal(row!.attempts, 2);
    assert.equal(row!.last_error, 'no answer within 1000 ms');
    // The hung request may have been processed: same id and same bytes, so the receiver can drop it.
    assert.equal(s.receiver.requests.length, 2);
    assert.equal(s.receiver.requests[0]!.body, s.receiver.requests[1]!.body);
    assert.equal(s.receiver.distinct().length, 1);
  } finally {
    await s.close(alerting);
  }
});

test('a receiver that is down: notifications wait in the outbox across a restart and arrive in order once it is back', async () => {
  const s = await setup();
  let alerting = s.make();
  try {
    await s.receiver.close(); // connection refused from now on
    alerting.start();
    sweep(s.history.store, [], at(-1)); // the account's baseline (its first sweep): never alerted
    const runs = [sweep(s.history.store, BASE, at(0))];
    s.time.set(at(5));
    runs.push(sweep(s.history.store, [tier('META-USD', '20', 0.05, 0.025, 80_000), BASE[1]!], at(5)));
    s.time.set(at(10));
    runs.push(sweep(s.history.store, [tier('META-USD', '20', 0.05, 0.025, 60_000), BASE[1]!], at(10)));
    await afterCommit();
    await alerting.idle();
    const before = listOutbox(s.history.db, { pendingOnly: true });
    assert.deepEqual(
      before.map((row) => row.run_id),
      runs,
    );
    assert.match(before[0]!.last_error ?? '', /ECONNREFUSED/);
    assert.ok(!(before[0]!.last_error ?? '').includes('secret-path-token'), 'the URL path is not in the stored error');

    // "Restart": stop, close the connection, open a fresh one and a fresh store, receiver back up.
    await alerting.stop();
    s.history.db.close();
    s.history.reopen();
    await s.receiver.listen();
    alerting = s.make();
    alerting.start();
    await alerting.idle();
    assert.deepEqual(
      s.receiver.bodies().map((body) => body.run.run_id),
      runs,
    );
    assert.equal(s.receiver.requests.length, 3, 'each sent once');
    const maxNotional = s.receiver
      .bodies()
      .slice(1)
      .map((body) => body.changes[0].after.max_notional);
    assert.deepEqual(maxNotional, [80_000, 60_000]);
    assert.equal(listOutbox(s.history.db, { pendingOnly: true }).length, 0);
  } finally {
    await s.close(alerting);
  }
});

test('delivery never delays collection: a sweep commits while a delivery hangs', async () => {
  // A timeout of an hour: whatever ends the hanging delivery below is the shutdown, never the
  // timeout, so "at once" is proved by what happened, not by a stopwatch on a loaded machine.
  const s = await setup({ TIERWATCH_WEBHOOK_TIMEOUT: '1h', TIERWATCH_WEBHOOK_RETRIES: '0' });
  const alerting = s.make();
  try {
    s.receiver.behaviour = () => 'hang';
    alerting.start();
    sweep(s.history.store, [], at(-1)); // the account's baseline (its first sweep): never alerted
    sweep(s.history.store, BASE, at(0));
    await afterCommit();
    while (s.receiver.requests.length === 0) await afterCommit();
    // The delivery is in flight and hanging; the next sweep commits regardless, while the
    // delivery is still hanging (the receiver holds the request, no attempt has ended).
    s.time.set(at(5));
    sweep(s.history.store, [tier('META-USD', '20', 0.07, 0.025, 100_000), BASE[1]!], at(5));
    assert.equal(s.receiver.hanging, 1, 'the delivery was still hanging when the sweep committed');
    const pending = listOutbox(s.history.db, { pendingOnly: true });
    assert.equal(pending.length, 2);
    assert.deepEqual(
      pending.map((row) => [row.attempts, row.last_error]),
      [
        [0, null],
        [0, null],
      ],
      'no attempt had ended',
    );
    // Shutdown aborts the hanging delivery at once (an hour before its timeout); both stay
    // pending for the next start. The bound is only a guard against a hang.
    const stopping = performance.now();
    await alerting.stop();
    assert.ok(performance.now() - stopping < 60_000, 'stop did not wait for the delivery timeout');
    assert.equal(s.receiver.requests.length, 1, 'nothing else was sent');
    assert.equal(listOutbox(s.history.db, { pendingOnly: true }).length, 2);
  } finally {
    await s.close(alerting);
  }
});
