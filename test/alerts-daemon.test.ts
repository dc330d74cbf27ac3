/**
 * `tierwatch run` with webhooks, end to end (simulator on loopback, receiver on loopback): after
 * the account's baseline (its first sweep, never alerted), the daemon's sweep of a change is delivered signed, `tierwatch alerts` shows it, and neither the QFEX
 * secret nor the webhook secret (nor the webhook URL's path) appears in any payload or log line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { verifySignature } from '../src/alerts/signature.ts';
import { runCli } from '../src/program.ts';
import { DEMO_SECRET_KEY } from '../src/sim/index.ts';
import { Receiver } from './alerts-fixture.ts';
import { LogCapture, runCliCaptured, startHarness, type Harness } from './helpers/harness.ts';

const WEBHOOK_SECRET = 'whsec-daemon-test-6f1d';

/** Resolves when a log line with this message has been written. */
function logged(logs: LogCapture, msg: string): Promise<void> {
  return new Promise((resolve) => {
    const original = logs._write.bind(logs);
    logs._write = (chunk, encoding, callback) => {
      original(chunk, encoding, callback);
      if (logs.lines.some((line) => line.msg === msg)) resolve();
    };
  });
}

/**
 * Takes the account's baseline with `collect` (it sends nothing), then edits one tier in the
 * simulator, so the daemon's first sweep has one change to send. Returns the edited symbol.
 */
async function baselineThenEdit(h: Harness, env: Record<string, string>, receiver: Receiver): Promise<string> {
  const baseline = await runCliCaptured(['collect'], { env });
  assert.equal(baseline.code, 0, baseline.stderr);
  assert.equal(receiver.requests.length, 0, 'the baseline is never alerted');
  const first = h.sim.tiers()[0]!;
  h.sim.editTier('primary', first.symbol, first.leverage, { max_notional: first.max_notional / 2 });
  return first.symbol;
}

test('`tierwatch run` delivers a signed notification after the baseline; `tierwatch alerts` lists it; no secret leaks', async () => {
  const h = await startHarness();
  const receiver = new Receiver();
  await receiver.listen();
  try {
    const logs = new LogCapture();
    const delivered = logged(logs, 'webhook notification delivered');
    const stop = new AbortController();
    const env = {
      ...h.env,
      TIERWATCH_SCHEDULE: '0 0 1 1 *',
      TIERWATCH_DB: `${h.dir}/daemon.db`,
      TIERWATCH_WEBHOOK_URL: receiver.url,
      TIERWATCH_WEBHOOK_SECRET: WEBHOOK_SECRET,
    };
    const edited = await baselineThenEdit(h, env, receiver);
    const io = {
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      env,
      stdoutIsTTY: false,
      signal: stop.signal,
      logDestination: logs,
    };
    const exit = runCli(['run'], io);
    await delivered;
    stop.abort();
    assert.equal(await exit, 0);

    assert.equal(receiver.requests.length, 1);
    const request = receiver.requests[0]!;
    const body = JSON.parse(request.body);
    assert.equal(body.type, 'changes');
    assert.equal(body.changes.length, 1, 'the one edited tier, not the baseline');
    assert.equal(body.changes[0].symbol, edited);
    assert.equal(body.changes[0].change, 'changed');
    assert.equal(body.changes[0].classification, 'tightening', 'max_notional halved');
    const timestamp = String(request.headers['x-tierwatch-timestamp']);
    assert.equal(
      verifySignature(WEBHOOK_SECRET, timestamp, request.body, String(request.headers['x-tierwatch-signature'])),
      true,
    );

    const stdout = new PassThrough();
    let listed = '';
    stdout.on('data', (chunk: Buffer) => (listed += chunk.toString('utf8')));
    assert.equal(
      await runCli(['alerts', '--format', 'json'], { ...io, stdout, signal: new AbortController().signal }),
      0,
    );
    const rows = JSON.parse(listed) as Array<Record<string, unknown>>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.status, 'delivered');
    assert.equal(rows[0]!.notification_id, body.id);
    assert.equal(rows[0]!.url, `http://127.0.0.1:${receiver.port}/…`);

    const everything = [
      logs.text(),
      listed,
      ...receiver.requests.map((r) => `${JSON.stringify(r.headers)}\n${r.body}`),
    ].join('\n');
    for (const secret of [DEMO_SECRET_KEY, WEBHOOK_SECRET, 'secret-path-token']) {
      assert.ok(!everything.includes(secret), `${secret} must not appear in payloads, listings or logs`);
    }
    assert.ok(logs.lines.some((line) => line.msg === 'webhook notification delivered'));
  } finally {
    await receiver.close();
    await h.close();
  }
});

test('`tierwatch alerts` table shows pending notifications with their failed attempts', async () => {
  const h = await startHarness();
  const receiver = new Receiver();
  await receiver.listen();
  let attempts = 0;
  const failedTwice = new Promise<void>((resolve) => {
    receiver.behaviour = () => {
      attempts += 1;
      if (attempts === 2) setImmediate(resolve);
      return 500;
    };
  });
  try {
    const stop = new AbortController();
    const env = {
      ...h.env,
      TIERWATCH_SCHEDULE: '0 0 1 1 *',
      TIERWATCH_DB: `${h.dir}/daemon.db`,
      TIERWATCH_WEBHOOK_URL: receiver.url,
      TIERWATCH_WEBHOOK_RETRIES: '1',
    };
    await baselineThenEdit(h, env, receiver);
    const io = {
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      env,
      stdoutIsTTY: false,
      signal: stop.signal,
      logDestination: new LogCapture(),
    };
    const exit = runCli(['run'], io);
    await failedTwice;
    stop.abort();
    assert.equal(await exit, 0);
    const stdout = new PassThrough();
    let table = '';
    stdout.on('data', (chunk: Buffer) => (table += chunk.toString('utf8')));
    assert.equal(
      await runCli(['alerts', '--pending', '--format', 'table'], {
        ...io,
        stdout,
        signal: new AbortController().signal,
      }),
      0,
    );
    assert.match(table, /changes/);
    assert.match(table, /pending/);
    assert.match(table, /✗ .*answered HTTP 500/);
    assert.match(table, /1 pending of 1 shown\./);
    assert.ok(!table.includes('secret-path-token'));
  } finally {
    await receiver.close();
    await h.close();
  }
});
