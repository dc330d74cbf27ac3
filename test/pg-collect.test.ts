/**
 * `tierwatch migrate` and `tierwatch collect` on Postgres, through the CLI against the simulator over
 * a real socket: the same sweeps store the same history as on SQLite (ids, values, links, runs);
 * a collect while another collector leads refuses with DB_LEADER_ELSEWHERE and sweeps nothing; the
 * URL's password is never shown. (Webhooks on Postgres: test/pg-alerts.test.ts.)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { createPgPool } from '../src/store/pg/connection.ts';
import { LeaderLease } from '../src/store/pg/lease.ts';
import { findLeaks } from './helpers/faults.ts';
import { runCliCaptured, startHarness } from './helpers/harness.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';

after(stopPgServer);

// Compared as stored, without the instants (the two collects run moments apart).
const VERSIONS = `SELECT version_id, account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional,
  exchange_id, run_id, prev_version_id, valid_to IS NULL AS open FROM tier_version ORDER BY version_id`;
const RUNS = `SELECT run_id, account_id, status, pages, tiers, changes, baseline, error_code FROM run_ledger ORDER BY run_id`;

/** Rows as plain objects with booleans as 0/1, so both drivers' rows compare equal. */
function plain(rows: readonly object[]): Array<Record<string, unknown>> {
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([key, value]) => [key, typeof value === 'boolean' ? Number(value) : value]),
    ),
  );
}

test('collect on Postgres stores the same history as on SQLite, sweep after sweep', async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const url = await server.createDatabase('collect');
  const h = await startHarness();
  t.after(() => h.close());
  const sqlitePath = `${h.dir}/same.db`;

  const migrated = await runCliCaptured(['migrate'], { env: { ...h.env, TIERWATCH_DB: url } });
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.match(migrated.stdout, /applied 2 migrations; it is now up to date/);
  assert.doesNotMatch(migrated.stdout, /postgres:\/\/[^@\s]*:[^@\s]*@/, 'no password printed');
  const again = await runCliCaptured(['migrate'], { env: { ...h.env, TIERWATCH_DB: url } });
  assert.match(again.stdout, /is up to date \(nothing to apply\)/);

  const [first, second, third] = h.sim.tiers();
  const edits: Array<() => void> = [
    () => {},
    () => h.sim.editTier('primary', first!.symbol, first!.leverage, { max_notional: first!.max_notional / 2 }),
    () => {
      h.sim.removeTier('primary', second!.symbol, second!.leverage);
      h.sim.addTier('primary', { ...third!, id: 'new-1', leverage: '77' });
    },
    () => {},
  ];
  for (const edit of edits) {
    edit();
    for (const db of [url, sqlitePath]) {
      const run = await runCliCaptured(['collect'], { env: { ...h.env, TIERWATCH_DB: db } });
      assert.equal(run.code, 0, run.stderr + run.logs.text().slice(-2000));
    }
  }

  const sqlite = new Database(sqlitePath, { readonly: true });
  t.after(() => sqlite.close());
  const pool = createPgPool(url);
  t.after(() => pool.end());
  const pgVersions = plain((await pool.query(VERSIONS)).rows);
  assert.deepEqual(pgVersions, plain(sqlite.prepare(VERSIONS).all() as object[]));
  assert.deepEqual(plain((await pool.query(RUNS)).rows), plain(sqlite.prepare(RUNS).all() as object[]));
  assert.equal(pgVersions.filter((row) => row.open === 1).length, h.sim.tiers().length);
  // Each run records the epoch of the collect that stored it: a fresh lease per collect.
  const epochs = (await pool.query<{ leader_epoch: number }>('SELECT leader_epoch FROM run_ledger ORDER BY run_id'))
    .rows;
  assert.deepEqual(
    epochs.map((row) => row.leader_epoch),
    [1, 2, 3, 4],
  );
});

test('collect refuses with DB_LEADER_ELSEWHERE while another collector leads, and sweeps nothing', async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const url = await server.createDatabase('elsewhere');
  const h = await startHarness();
  t.after(() => h.close());
  assert.equal((await runCliCaptured(['migrate'], { env: { ...h.env, TIERWATCH_DB: url } })).code, 0);
  const pool = createPgPool(url);
  t.after(() => pool.end());
  const daemon = new LeaderLease(pool, { holder: 'host-b:4242' });
  assert.equal(await daemon.tryAcquire(), 1);

  const refused = await runCliCaptured(['collect'], { env: { ...h.env, TIERWATCH_DB: url } });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /host-b:4242 leads .* \(epoch 1, its lease runs until .*nothing was swept/);
  assert.equal((await pool.query('SELECT count(*)::int AS n FROM run_ledger')).rows[0].n, 0);
  assert.equal(h.sim.stats.connections, 0, 'the exchange was not even contacted');

  // Released (a daemon's graceful stop): the next collect leads with the next epoch.
  await daemon.release();
  const collected = await runCliCaptured(['collect'], { env: { ...h.env, TIERWATCH_DB: url } });
  assert.equal(collected.code, 0, collected.stderr);
  assert.equal((await pool.query('SELECT leader_epoch FROM run_ledger')).rows[0].leader_epoch, 2);
});

test("the database URL's password is never printed, logged or stored", async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  // The test server trusts loopback, so any password connects; what matters is where it goes.
  const plainUrl = await server.createDatabase('secret');
  const password = 'pg-Pa55word-never-shown';
  const parsed = new URL(plainUrl);
  parsed.password = password;
  const url = parsed.href;
  const h = await startHarness();
  t.after(() => h.close());
  const env = { ...h.env, TIERWATCH_DB: url, LOG_LEVEL: 'trace' };

  const outputs: Record<string, string> = {};
  const keep = (name: string, run: { stdout: string; stderr: string; logs: { text(): string } }) => {
    outputs[`${name} stdout`] = run.stdout;
    outputs[`${name} stderr`] = run.stderr;
    outputs[`${name} logs`] = run.logs.text();
  };
  keep('migrate', await runCliCaptured(['migrate'], { env }));
  const collected = await runCliCaptured(['collect'], { env, tty: true });
  assert.equal(collected.code, 0, collected.stderr);
  keep('collect', collected);

  const stop = new AbortController();
  const daemon = runCliCaptured(['run'], {
    env: { ...env, TIERWATCH_HTTP_PORT: '0', TIERWATCH_HTTP_HOST: '127.0.0.1', TIERWATCH_SCHEDULE: '0 0 1 1 *' },
    signal: stop.signal,
  });
  // The in-process runner gives its logs at the end: wait on the lease in the database instead.
  const pool = createPgPool(plainUrl);
  t.after(() => pool.end());
  for (let tries = 0; tries < 600; tries += 1) {
    const held = await pool.query(`SELECT 1 FROM leader_lease WHERE expires_at > clock_timestamp()`);
    const runs = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM run_ledger WHERE status = 'ok'`);
    if (held.rowCount === 1 && runs.rows[0]!.n >= 2) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const sessions = await pool.query<{ application_name: string }>('SELECT application_name FROM pg_stat_activity');
  outputs['pg_stat_activity'] = JSON.stringify(sessions.rows);
  stop.abort();
  const ran = await daemon;
  assert.equal(ran.code, 0, ran.logs.text().slice(-2000));
  keep('run', ran);
  assert.match(outputs['run logs']!, /leading \(epoch 2\)/);

  for (const table of ['meta', 'run_ledger', 'tier_version', 'leader_lease']) {
    outputs[table] = JSON.stringify((await pool.query(`SELECT * FROM ${table}`)).rows);
  }
  assert.deepEqual(findLeaks(outputs, { password }), []);
  assert.match(outputs['collect logs']! + outputs['run logs']!, new RegExp(parsed.host));
});
