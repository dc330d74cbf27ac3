/**
 * Webhook alerts on a Postgres history, through the CLI against the simulator and a webhook receiver
 * on real sockets: two daemons, and only the leader writes and delivers notifications — each change
 * once; what a leader leaves pending (the receiver was failing) is delivered by the next leader at
 * its election; `collect` delivers its own sweep's notification.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPgPool } from '../src/store/pg/connection.ts';
import { Receiver } from './alerts-fixture.ts';
import { LogCapture, runCliCaptured, startHarness } from './helpers/harness.ts';
import { waitForLogLine } from './helpers/http-daemon.ts';
import { logMessage, startLeaderAndStandby } from './helpers/pg-daemon.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';

after(stopPgServer);

const message = logMessage;

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('only the leader alerts; the next leader delivers what the last one left pending', async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const url = await server.createDatabase('alerts');
  const h = await startHarness();
  t.after(() => h.close());
  const receiver = new Receiver();
  await receiver.listen();
  t.after(() => receiver.close());
  const pool = createPgPool(url);
  t.after(() => pool.end());
  const env = {
    TIERWATCH_DB: url,
    TIERWATCH_WEBHOOK_URL: receiver.url,
    TIERWATCH_WEBHOOK_RETRIES: '1',
    TIERWATCH_SCHEDULE: '* * * * * *',
    TIERWATCH_LEASE_TTL: '30s',
    TIERWATCH_LEASE_RENEW: '2s',
    TIERWATCH_LEASE_POLL: '500ms',
  };
  const { leader: first, standby: second } = await startLeaderAndStandby(t, h, env);

  const [one, two] = h.sim.tiers();
  h.sim.editTier('primary', one!.symbol, one!.leverage, { max_notional: one!.max_notional / 2 });
  await until('the first notification', () => receiver.requests.length === 1);

  // The receiver fails: the leader's notification stays pending in the shared outbox.
  receiver.behaviour = () => 500;
  h.sim.editTier('primary', two!.symbol, two!.leverage, { max_notional: two!.max_notional / 2 });
  await until('a failed attempt', async () => {
    const rows = await pool.query(`SELECT 1 FROM alert_outbox WHERE status = 'pending' AND attempts > 0`);
    return rows.rowCount === 1;
  });
  assert.equal(await first.stop(), 0);
  receiver.behaviour = () => 'ok';
  await waitForLogLine(second.logs, message(/^leading \(epoch 2\)$/), 20_000);
  await until('the pending notification, from the new leader', () => receiver.distinct().length === 2);
  assert.equal(await second.stop(), 0);

  const outbox = await pool.query<{ status: string; kind: string }>(
    'SELECT status, kind FROM alert_outbox ORDER BY outbox_id',
  );
  assert.deepEqual(outbox.rows, [
    { status: 'delivered', kind: 'changes' },
    { status: 'delivered', kind: 'changes' },
  ]);
  const bodies = receiver.distinct().map((request) => JSON.parse(request.body) as { type: string; changes: unknown[] });
  assert.deepEqual(
    bodies.map((body) => body.type),
    ['changes', 'changes'],
  );
  assert.match(receiver.distinct()[0]!.body, new RegExp(one!.symbol));
  assert.match(receiver.distinct()[1]!.body, new RegExp(two!.symbol));
  // Who delivered: the first leader the first, the second leader the second; a standby nothing.
  const delivered = (logs: LogCapture) => logs.lines.filter(message(/^webhook notification delivered$/)).length;
  assert.equal(delivered(first.logs), 1);
  assert.equal(delivered(second.logs), 1);
  const electedAt = second.logs.lines.findIndex(message(/^leading \(epoch 2\)$/));
  assert.ok(second.logs.lines.findIndex(message(/^webhook notification delivered$/)) > electedAt);
});

test("collect on Postgres delivers its sweep's notification once", async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const url = await server.createDatabase('collectalerts');
  const h = await startHarness();
  t.after(() => h.close());
  const receiver = new Receiver();
  await receiver.listen();
  t.after(() => receiver.close());
  const env = { ...h.env, TIERWATCH_DB: url, TIERWATCH_WEBHOOK_URL: receiver.url };
  assert.equal((await runCliCaptured(['collect'], { env })).code, 0);
  assert.equal(receiver.requests.length, 0, 'the baseline is never alerted');
  const [one] = h.sim.tiers();
  h.sim.editTier('primary', one!.symbol, one!.leverage, { max_notional: one!.max_notional * 2 });
  const collected = await runCliCaptured(['collect'], { env });
  assert.equal(collected.code, 0, collected.stderr);
  assert.equal(receiver.requests.length, 1);
  assert.equal((JSON.parse(receiver.requests[0]!.body) as { type: string }).type, 'changes');
});
