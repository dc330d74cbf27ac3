/**
 * Leadership of `tierwatch run` daemons sharing one Postgres history, in this process against the
 * simulator over a real socket: one leads and sweeps, the other stands by and says who leads; a
 * graceful stop hands over at once (far sooner than the lease would run out); a leader that cannot
 * reach the exchange for TIERWATCH_STEP_DOWN_AFTER firings in a row steps down, and the standby that
 * can reach it takes over; a leader whose lease is taken, or whose network to Postgres is cut, stands
 * by without exiting. (Crashes, freezes and ended sessions at random: test/pg-failover.test.ts.)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator } from '../src/sim/index.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { LeaderLease } from '../src/store/pg/lease.ts';
import { startHarness } from './helpers/harness.ts';
import { logMessage, startDaemon, startLeaderAndStandby, type Daemon } from './helpers/pg-daemon.ts';
import { waitForLogLine } from './helpers/http-daemon.ts';
import { startTcpCut } from './helpers/tcp-cut.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';

after(stopPgServer);

/** GET /healthz of a daemon, once it listens. */
async function healthz(daemon: Daemon): Promise<{ status: number; text: string }> {
  const listening = await waitForLogLine(daemon.logs, message(/^serving \/healthz and \/metrics$/));
  const response = await fetch(`http://127.0.0.1:${Number(listening.port)}/healthz`);
  return { status: response.status, text: await response.text() };
}

const message = logMessage;

test('a graceful stop hands the lease over at once; the standby said who led', async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const url = await server.createDatabase('handover');
  const h = await startHarness();
  t.after(() => h.close());
  // A long lease: only a release explains a takeover within a few seconds.
  const env = {
    TIERWATCH_DB: url,
    TIERWATCH_SCHEDULE: '*/2 * * * * *',
    TIERWATCH_LEASE_TTL: '30s',
    TIERWATCH_LEASE_RENEW: '2s',
    TIERWATCH_LEASE_POLL: '500ms',
    TIERWATCH_HTTP_PORT: '0',
    TIERWATCH_HTTP_HOST: '127.0.0.1',
  };
  const { leader: a, standby: b, standing } = await startLeaderAndStandby(t, h, env);
  assert.equal(standing.level, 'info');
  const aHolder = a.logs.lines.find(message(/^leading/))!.holder;
  assert.equal(standing.leader, aHolder);
  assert.equal(b.logs.lines.filter(message(/^sweep /)).length, 0, 'a standby does not sweep');
  // /healthz judges the shared history, and says which part each daemon plays.
  const leaderHealth = await healthz(a);
  assert.equal(leaderHealth.status, 200, leaderHealth.text);
  assert.match(leaderHealth.text, /^healthy: 1 account\(s\) swept within .*; leading \(epoch 1\)\n$/);
  const standbyHealth = await healthz(b);
  assert.equal(standbyHealth.status, 200, standbyHealth.text);
  assert.match(standbyHealth.text, new RegExp(`; standing by: ${String(aHolder)} leads \\(epoch 1\\)\n$`));

  const stoppedAt = performance.now();
  assert.equal(await a.stop(), 0);
  await waitForLogLine(b.logs, message(/^leading \(epoch 2\)$/), 20_000);
  const handoverMs = performance.now() - stoppedAt;
  await waitForLogLine(b.logs, message(/^sweep ok/));
  t.diagnostic(`graceful handover took ${Math.round(handoverMs)} ms (lease ttl 30 s, poll 500 ms)`);
  assert.ok(handoverMs < 10_000, `handed over in ${Math.round(handoverMs)} ms, far below the 30 s lease`);
  assert.equal(await b.stop(), 0);

  const pool = createPgPool(url);
  t.after(() => pool.end());
  const runs = (
    await pool.query<{ status: string; leader_epoch: number }>('SELECT status, leader_epoch FROM run_ledger')
  ).rows;
  assert.ok(
    runs.every((run) => run.status === 'ok' || run.status === 'aborted'),
    JSON.stringify(runs),
  );
  assert.deepEqual([...new Set(runs.map((run) => run.leader_epoch))].sort(), [1, 2]);
  const lease = (await pool.query('SELECT epoch, expires_at <= clock_timestamp() AS released FROM leader_lease'))
    .rows[0];
  assert.deepEqual(lease, { epoch: 2, released: true });
});

test('a leader that cannot reach the exchange steps down after K firings; a standby takes over at once', async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const url = await server.createDatabase('stepdown');
  const h = await startHarness();
  t.after(() => h.close());
  const env = {
    TIERWATCH_DB: url,
    TIERWATCH_SCHEDULE: '* * * * * *',
    TIERWATCH_LEASE_TTL: '6s',
    TIERWATCH_LEASE_RENEW: '1s',
    TIERWATCH_LEASE_POLL: '500ms',
    TIERWATCH_STEP_DOWN_AFTER: '2',
    TIERWATCH_SWEEP_RETRIES: '0',
  };
  const { leader: first, standby: second } = await startLeaderAndStandby(t, h, env);

  // The exchange goes away (nothing listens on its port) until the leader has stepped down.
  await h.sim.close();
  const stepped = await waitForLogLine(
    first.logs,
    message(/^stepping down: 2 sweeps in a row could not reach the exchange/),
  );
  const steppedAt = performance.now();
  const sim = await startSimulator({ host: '127.0.0.1', port: h.sim.port });
  t.after(() => sim.close());
  assert.equal(stepped.level, 'warn');
  await waitForLogLine(second.logs, message(/^leading \(epoch 2\)$/), 20_000);
  const takeoverMs = performance.now() - steppedAt;
  t.diagnostic(`the standby took over ${Math.round(takeoverMs)} ms after the step-down (lease ttl 6 s, poll 500 ms)`);
  assert.ok(takeoverMs < 6000, `the lease was released, not left to run out: ${Math.round(takeoverMs)} ms`);
  await waitForLogLine(second.logs, message(/^sweep ok/));
  // The one that stepped down stands by and says so; it does not take the lease back.
  await waitForLogLine(first.logs, message(/^standing by: .* leads \(epoch 2\)/));
  assert.equal(await first.stop(), 0);
  assert.equal(first.logs.lines.filter(message(/^leading/)).length, 1);
  assert.equal(await second.stop(), 0);

  const pool = createPgPool(url);
  t.after(() => pool.end());
  const runs = (
    await pool.query<{ status: string; error_code: string | null; leader_epoch: number }>(
      'SELECT status, error_code, leader_epoch FROM run_ledger ORDER BY run_id',
    )
  ).rows;
  // Epoch 1 ends with the two failed firings that made it step down. A sweep in flight when the
  // exchange went away ends QFEX_CLOSED rather than QFEX_CONNECT: both count as unreachable.
  const failed = runs.filter((run) => run.leader_epoch === 1 && run.status !== 'ok');
  assert.equal(failed.length, 2, JSON.stringify(runs));
  assert.ok(
    failed.every((run) => run.status === 'failed' && ['QFEX_CONNECT', 'QFEX_CLOSED'].includes(run.error_code ?? '')),
    JSON.stringify(runs),
  );
  assert.ok(runs.some((run) => run.leader_epoch === 2 && run.status === 'ok'));
});

test('a leader whose lease is taken stops sweeping at once and stands by, without exiting; it leads again later', async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const url = await server.createDatabase('stolen');
  const h = await startHarness();
  t.after(() => h.close());
  const daemon = startDaemon(h, {
    TIERWATCH_DB: url,
    TIERWATCH_SCHEDULE: '* * * * * *',
    TIERWATCH_LEASE_TTL: '30s',
    TIERWATCH_LEASE_RENEW: '1s',
    TIERWATCH_LEASE_POLL: '500ms',
  });
  t.after(() => daemon.stop());
  await waitForLogLine(daemon.logs, message(/^leading \(epoch 1\)$/));
  await waitForLogLine(daemon.logs, message(/^sweep ok/));

  // Another collector takes over (as after a freeze the leader did not notice): the lease is ended
  // behind the leader's back and taken with the next epoch.
  const pool = createPgPool(url);
  t.after(() => pool.end());
  await pool.query(`UPDATE leader_lease SET expires_at = clock_timestamp() - interval '1 second'`);
  const thief = new LeaderLease(pool, { holder: 'host-b:999', settings: { ttlMs: 30_000 } });
  assert.equal(await thief.tryAcquire(), 2);
  const stolenAt = daemon.logs.lines.length;

  await waitForLogLine(daemon.logs, message(/^no longer leading \(epoch 1\)/));
  await waitForLogLine(daemon.logs, message(/^standing by: host-b:999 leads \(epoch 2\)/));
  // A second and more of firings: none of them sweeps.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const since = daemon.logs.lines.slice(stolenAt);
  const sweepsAfter = since.filter(message(/^sweep (ok|failed)/));
  assert.ok(
    sweepsAfter.length <= 1,
    `at most the sweep in flight at the takeover ends: ${JSON.stringify(sweepsAfter)}`,
  );
  const runs = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM run_ledger WHERE leader_epoch = 1 AND started_at > clock_timestamp() - interval '2 seconds'`,
  );
  assert.equal(runs.rows[0]!.n, 0, 'no run started under the lost epoch once it was lost');

  // The thief stops gracefully: the daemon leads again, with a higher epoch, and sweeps.
  await thief.release();
  await waitForLogLine(daemon.logs, message(/^leading \(epoch 3\)$/), 20_000);
  await waitForLogLine(
    daemon.logs,
    (line) => line.msg === 'sweep ok, no changes' && daemon.logs.lines.indexOf(line) > stolenAt,
  );
  assert.equal(await daemon.stop(), 0);
});

test('a leader cut off from Postgres by the network is replaced within the lease bound; healed, it stands by', async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const url = await server.createDatabase('netcut');
  const h = await startHarness();
  t.after(() => h.close());
  const direct = new URL(url);
  const wire = await startTcpCut(Number(direct.port));
  t.after(() => wire.close());
  const throughWire = new URL(url);
  throughWire.port = String(wire.port);
  const env = {
    TIERWATCH_SCHEDULE: '* * * * * *',
    TIERWATCH_LEASE_TTL: '3s',
    TIERWATCH_LEASE_RENEW: '1s',
    TIERWATCH_LEASE_POLL: '500ms',
  };
  const { leader: cutOff, standby } = await startLeaderAndStandby(
    t,
    h,
    { ...env, TIERWATCH_DB: throughWire.href },
    { ...env, TIERWATCH_DB: url },
  );

  // No reset, no error: the leader's statements just never get an answer.
  wire.cut();
  const cutAt = performance.now();
  await waitForLogLine(standby.logs, message(/^leading \(epoch 2\)$/), 20_000);
  const takeoverMs = performance.now() - cutAt;
  t.diagnostic(`takeover ${Math.round(takeoverMs)} ms after the leader lost the network (bound 3 s + 500 ms)`);
  assert.ok(takeoverMs <= 3500 + 2500, `takeover took ${Math.round(takeoverMs)} ms`);
  await waitForLogLine(standby.logs, message(/^sweep ok/));

  // The network comes back: what the old leader sent meanwhile finds the lease gone.
  wire.heal();
  await waitForLogLine(cutOff.logs, message(/^no longer leading \(epoch 1\)/), 20_000);
  await waitForLogLine(cutOff.logs, message(/^standing by: .* leads \(epoch 2\)/), 20_000);
  assert.equal(await cutOff.stop(), 0);
  assert.equal(await standby.stop(), 0);
  const pool = createPgPool(url);
  t.after(() => pool.end());
  const stuck = await pool.query(`SELECT run_id FROM run_ledger WHERE status = 'running'`);
  assert.equal(stuck.rowCount, 0);
});
