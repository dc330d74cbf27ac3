/**
 * Read-only queries on a Postgres history (src/store/pg/readonly-query.ts) against the SQLite path
 * of `tierwatch query` (src/query/sql-process.ts), on the same history: the same columns and
 * values, the same refusals (a write is USAGE on both, whether the guard or the database stops it),
 * and a runaway statement stopped at its timeout. Then the reader role of docs/teams.md, run as
 * written against the real server: it reads the views, not the tables, and cannot write.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { isTierwatchError } from '../src/errors.ts';
import type { Tier } from '../src/history/tier.ts';
import { runReadOnlyQuery } from '../src/query/sql-process.ts';
import { openDatabase } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { connectPg, createPgPool } from '../src/store/pg/connection.ts';
import { LeaderLease } from '../src/store/pg/lease.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { runPgReadOnlyQuery } from '../src/store/pg/readonly-query.ts';
import { PgSweepWriter } from '../src/store/pg/sweep-writer.ts';
import { postgresOrSkip, stopPgServer, type PgServer } from './helpers/pg-server.ts';

after(stopPgServer);

const ROOT = path.resolve(import.meta.dirname, '..');
const ENDPOINT = 'wss://qfex.example/ws';
const T0 = Date.UTC(2026, 0, 1, 0, 0, 0, 123);
const LIMITS = { timeoutMs: 30_000, timeoutText: '30s' };

function tier(symbol: string, leverage: string, im: number, notional: number): Tier {
  return {
    symbol,
    leverage,
    initial_margin: im,
    maintenance_margin: im / 2,
    max_notional: notional,
    exchange_id: null,
  };
}

const SWEEPS: Tier[][] = [
  [tier('BTC-USD', '20', 0.05, 1e6), tier('META_USD', '2.5', 0.0125, 150_000), tier('meta-usd', '1', 0.1, 12_345.678)],
  [tier('BTC-USD', '20', 0.0625, 1e6), tier('META_USD', '2.5', 0.0125, 150_000), tier('ETH-USD', '10', 0.1, 5e5)],
];

/** The same history in a SQLite file and a Postgres database. */
async function twinHistories(server: PgServer, dir: string): Promise<{ dbPath: string; url: string }> {
  const dbPath = path.join(dir, 'history.db');
  const db = openDatabase(dbPath);
  const url = await server.createDatabase('readonly');
  await migratePostgres(url);
  const pool = createPgPool(url);
  try {
    const store = new HistoryStore(db);
    const lease = new LeaderLease(pool, { holder: 'test' });
    assert.equal(await lease.tryAcquire(), 1);
    const writer = new PgSweepWriter(lease);
    for (const [i, tiers] of SWEEPS.entries()) {
      const at = T0 + i * 300_000;
      const start = { accountId: 'primary', endpoint: ENDPOINT, publicKey: 'pk', startedAt: new Date(at - 500) };
      const runId = store.startRun(start);
      assert.equal(await writer.startRun(start), runId);
      const sweep = {
        accountId: 'primary',
        observedAt: new Date(at),
        finishedAt: new Date(at + 3),
        tiers,
        pages: 1,
        maxRemovalRatio: 0.5,
      };
      store.commitSweep(runId, sweep);
      await writer.commitSweep(runId, sweep);
    }
  } finally {
    db.close();
    await pool.end();
  }
  return { dbPath, url };
}

/** The SQLite path of `tierwatch query`: columns and every row. */
async function sqliteQuery(dbPath: string, sql: string): Promise<{ columns: string[]; rows: unknown[][] }> {
  let columns: string[] = [];
  const rows: unknown[][] = [];
  await runReadOnlyQuery(
    { dbPath, sql, footer: false },
    { ...LIMITS, signal: new AbortController().signal },
    {
      started(names) {
        columns = names;
      },
      rows(batch) {
        rows.push(...batch);
        return Promise.resolve(true);
      },
    },
  );
  return { columns, rows };
}

async function codeOf(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (error) {
    if (isTierwatchError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

test(
  'read-only queries on Postgres: the same columns and values as the SQLite path, the same refusals, a runaway statement stopped at its timeout',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgquery-'));
    try {
      const { dbPath, url } = await twinHistories(server, dir);
      const same = [
        'SELECT * FROM tier_changes ORDER BY run_id, symbol, leverage',
        'SELECT * FROM tiers_current ORDER BY symbol, leverage',
        'SELECT run_id, account_id, started_at, observed_at, status, tiers, changes FROM runs ORDER BY run_id',
        // count is bigint on Postgres, a comparison boolean, 1.5 numeric. (Not avg or sum of doubles:
        // the two engines add in different orders, so the last bit may differ.)
        'SELECT count(*) AS n, max(max_notional) AS top, max(initial_margin) > 0.05 AS big, 1.5 AS x FROM tier_versions',
        "SELECT symbol FROM tier_versions WHERE symbol LIKE 'm%' OR symbol LIKE 'M%' ORDER BY symbol",
      ];
      for (const sql of same) {
        const fromSqlite = await sqliteQuery(dbPath, sql);
        assert.ok(fromSqlite.rows.length > 0, sql);
        assert.deepEqual(await runPgReadOnlyQuery(url, sql, LIMITS), fromSqlite, sql);
      }
      // SQLite has no leader; the Postgres writer led under epoch 1.
      assert.deepEqual((await runPgReadOnlyQuery(url, 'SELECT leader_epoch FROM runs', LIMITS)).rows, [[1], [1]]);

      const before = (await runPgReadOnlyQuery(url, 'SELECT count(*) FROM run_ledger', LIMITS)).rows;
      const writes = [
        // Stopped by the guard on both paths.
        "INSERT INTO meta (key, value) VALUES ('x', 'y')",
        'SELECT 1; DELETE FROM run_ledger',
        // Past the guard (it starts with WITH): SQLite's statement check and Postgres' read-only
        // transaction refuse it.
        'WITH gone AS (DELETE FROM run_ledger RETURNING run_id) SELECT count(*) FROM gone',
        "WITH added AS (INSERT INTO meta (key, value) VALUES ('x', 'y') RETURNING key) SELECT * FROM added",
      ];
      for (const sql of writes) {
        assert.equal(await codeOf(() => sqliteQuery(dbPath, sql)), 'USAGE', `SQLite: ${sql}`);
        assert.equal(await codeOf(() => runPgReadOnlyQuery(url, sql, LIMITS)), 'USAGE', `Postgres: ${sql}`);
      }
      // A write that only Postgres sees: the read-only transaction is what refuses it.
      const direct = await runPgReadOnlyQuery(url, 'SELECT 1', LIMITS);
      assert.deepEqual(direct.rows, [[1]]);
      await assert.rejects(
        runPgReadOnlyQuery(
          url,
          'WITH gone AS (DELETE FROM tier_version RETURNING 1) SELECT count(*) FROM gone',
          LIMITS,
        ),
        (error) => isTierwatchError(error, 'USAGE') && /read-only transaction/.test(error.message),
      );
      assert.deepEqual((await runPgReadOnlyQuery(url, 'SELECT count(*) FROM run_ledger', LIMITS)).rows, before);

      // A statement that is not valid SQL, or reads what is not there, is the user's to fix.
      assert.equal(await codeOf(() => runPgReadOnlyQuery(url, 'SELECT * FROM nowhere', LIMITS)), 'USAGE');

      // A runaway statement is stopped by the server at its timeout, not left running.
      const started = Date.now();
      await assert.rejects(
        runPgReadOnlyQuery(url, 'SELECT pg_sleep(30)', { timeoutMs: 300, timeoutText: '300ms' }),
        (error) => isTierwatchError(error, 'QUERY_TIMEOUT') && /--timeout 300ms/.test(error.message),
      );
      assert.ok(Date.now() - started < 20_000, `stopped after ${Date.now() - started} ms`);
      const admin = await connectPg(url);
      try {
        const running = await admin.query(
          `SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'`,
        );
        assert.deepEqual(running.rows, [], 'nothing left running on the server');
      } finally {
        await admin.end();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

/** The statements of docs/teams.md's walk-through that make and grant the reader role, as written. */
function readerRoleSql(): string {
  const page = fs.readFileSync(path.join(ROOT, 'docs', 'teams.md'), 'utf8');
  const statements = [...page.matchAll(/^psql "\$\w+" -c "(.*tierwatch_reader.*)"$/gm)].map((match) => match[1]!);
  assert.ok(
    statements.some((sql) => sql.startsWith('CREATE ROLE')) && statements.some((sql) => sql.startsWith('GRANT SELECT')),
    `docs/teams.md creates and grants the reader role: ${JSON.stringify(statements)}`,
  );
  return statements.join(';\n');
}

test(
  'the reader role of docs/teams.md reads the views, not the tables, and cannot write',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgreader-'));
    // Roles belong to the whole server: a name of this run's own, dropped at the end.
    const role = `tierwatch_reader_${process.pid}_${Date.now().toString(36)}`;
    const { url } = await twinHistories(server, dir);
    const admin = await connectPg(url);
    try {
      await admin.query(readerRoleSql().replaceAll('tierwatch_reader', role));
      const readerUrl = new URL(url);
      readerUrl.username = role;
      readerUrl.password = 'change-me-too';
      const reader = new pg.Client({ connectionString: readerUrl.toString() });
      await reader.connect();
      try {
        const changes = await reader.query<{ n: string }>('SELECT count(*) AS n FROM tier_changes');
        assert.ok(Number(changes.rows[0]?.n) > 0, 'reads tier_changes');
        for (const view of ['runs', 'tier_versions', 'tiers_current']) {
          await reader.query(`SELECT * FROM ${view} LIMIT 1`);
        }
        for (const table of ['tier_version', 'run_ledger', 'leader_lease', 'meta', 'tier_change_feed']) {
          await assert.rejects(reader.query(`SELECT * FROM ${table} LIMIT 1`), /permission denied/, table);
        }
        await assert.rejects(
          reader.query("INSERT INTO meta (key, value) VALUES ('x', 'y')"),
          /read-only transaction|permission denied/,
        );
        // Even with a read-write transaction asked for, it has no right to write.
        await reader.query('BEGIN READ WRITE');
        await assert.rejects(reader.query('DELETE FROM tier_version'), /permission denied/);
        await reader.query('ROLLBACK');
      } finally {
        await reader.end();
      }
      // The read-only query path works as the role too.
      const rows = await runPgReadOnlyQuery(readerUrl.toString(), 'SELECT count(*) FROM tier_changes', LIMITS);
      assert.ok(Number(rows.rows[0]?.[0]) > 0);
      assert.equal(
        await codeOf(() => runPgReadOnlyQuery(readerUrl.toString(), 'SELECT * FROM tier_version', LIMITS)),
        'USAGE',
      );
      const versions = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM tier_version');
      assert.ok((versions.rows[0]?.n ?? 0) > 0, 'the history is intact');
    } finally {
      await admin.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}`).catch(() => {});
      await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`).catch(() => {});
      await admin.end();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
