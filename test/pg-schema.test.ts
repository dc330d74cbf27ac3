/**
 * One contract, two dialects (issue 15): the Postgres schema (src/store/pg/schema.ts, migrations-pg/)
 * is bound to the SQLite one (src/store/schema.ts, migrations/) by comparing the two LIVE databases
 * after migrating — tables, columns in order with their kind, nullability, keys and defaults,
 * indexes (columns, uniqueness, partial predicate), checks, foreign keys, views and their columns
 * in order — and by the answers: a history written by the SQLite store, copied row for row into
 * Postgres, reads back identically from every table and view, whatever the session's time zone.
 * Also: identity text sorts byte by byte in a database whose default collation is ICU en-US, and
 * regenerating both migration folders with drizzle-kit leaves git clean.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import pg from 'pg';
import { openDatabase } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import type { Tier } from '../src/history/tier.ts';
import { connectPg } from '../src/store/pg/connection.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { VIEW_COLUMNS } from '../src/store/schema.ts';
import { postgresOrSkip, stopPgServer, type PgServer } from './helpers/pg-server.ts';
import { describePostgres, describeSqlite } from './helpers/schema-shape.ts';

after(stopPgServer);

const ROOT = path.resolve(import.meta.dirname, '..');

function tempSqlite(): { dir: string; dbPath: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgschema-'));
  return { dir, dbPath: path.join(dir, 'history.db') };
}

async function migratedPostgres(server: PgServer): Promise<{ url: string; client: pg.Client }> {
  const url = await server.createDatabase('schema');
  await migratePostgres(url);
  return { url, client: await connectPg(url) };
}

test(
  'the Postgres schema mirrors the SQLite one: tables, columns in order, keys, defaults, indexes, checks, foreign keys, views',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const { dir, dbPath } = tempSqlite();
    const db = openDatabase(dbPath);
    const { client } = await migratedPostgres(server);
    try {
      const sqliteShape = describeSqlite(db.sqlite);
      const { shape: pgShape, rawTypes } = await describePostgres(client);
      // The whole shape at once, so a failure shows every difference.
      assert.deepEqual(pgShape, sqliteShape);
      // The public views are the documented contract.
      for (const [view, columns] of Object.entries(VIEW_COLUMNS)) {
        assert.deepEqual(pgShape.views[view], [...columns], view);
      }
      // Issue 15: runs gains leader_epoch at the END of the view, on both backends (NULL on SQLite).
      assert.equal(pgShape.views.runs?.at(-1), 'leader_epoch');
      assert.equal(sqliteShape.views.runs?.at(-1), 'leader_epoch');
      // The types that keep answers identical.
      assert.deepEqual(
        rawTypes.filter((c) => c.type === 'real'),
        [],
        'no 4-byte real anywhere',
      );
      const identity = new Set([
        'account_id',
        'symbol',
        'leverage',
        'endpoint',
        'key',
        'notification_id',
        'url',
        'exchange_id',
      ]);
      assert.deepEqual(
        rawTypes.filter((c) => identity.has(c.column) && c.collation !== 'C').map((c) => `${c.table}.${c.column}`),
        [],
        'identity text is COLLATE "C"',
      );
      const instants = rawTypes.filter((c) => c.type === 'timestamp with time zone').map((c) => c.column);
      assert.ok(
        instants.length > 0 && instants.every((name) => name.endsWith('_at')),
        `only *_at columns are instants: ${instants.join(', ')}`,
      );
      const precision = await client.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'timestamp with time zone' AND datetime_precision <> 3`,
      );
      assert.deepEqual(precision.rows, [], 'instants are timestamptz(3)');
    } finally {
      await client.end();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

const ENDPOINT = 'wss://qfex.example/ws';
const T0 = Date.UTC(2026, 0, 1, 0, 0, 0, 123);

function tier(
  symbol: string,
  leverage: string,
  im: number,
  mm: number,
  notional: number,
  exchangeId: string | null = null,
): Tier {
  return {
    symbol,
    leverage,
    initial_margin: im,
    maintenance_margin: mm,
    max_notional: notional,
    exchange_id: exchangeId,
  };
}

/** A small history with every kind of change, awkward floats, symbols that collations order differently, a failed run. */
function writeSqliteHistory(store: HistoryStore): void {
  store.bindEndpoint(ENDPOINT);
  const sweeps: Array<{ account: string; tiers: Tier[] } | { account: string; fail: true }> = [
    {
      account: 'primary',
      tiers: [
        tier('META_USD', '20', 0.05, 0.0125, 1e6, 'r1'),
        tier('meta-usd', '2.5', 0.6666666666666666, 0.3333333333333333, 150_000),
        tier('META-USD', '1', 0.1, 0.05, 2e6),
      ],
    },
    { account: 'sub-1', tiers: [tier('BTC-USD', '100', 0.01, 0.005, 5e5)] },
    {
      account: 'primary',
      tiers: [
        tier('META_USD', '20', 0.30000000000000004, 0.0125, 1e6, 'r2'),
        tier('meta-usd', '2.5', 0.6666666666666666, 0.3333333333333333, 150_000),
        tier('META-USD', '1', 0.1, 0.05, 2e6),
      ],
    },
    { account: 'primary', fail: true },
    {
      account: 'primary',
      tiers: [tier('META_USD', '20', 0.30000000000000004, 0.0125, 1e6), tier('META-USD', '1', 0.1, 0.04, 3e6)],
    },
    { account: 'sub-1', tiers: [tier('BTC-USD', '100', 0.02, 0.005, 5e5), tier('ETH-USD', '50', 0.02, 0.01, 4e5)] },
    {
      account: 'primary',
      tiers: [
        tier('META_USD', '20', 0.30000000000000004, 0.0125, 1e6),
        tier('META-USD', '1', 0.1, 0.04, 3e6),
        tier('meta-usd', '2.5', 0.7, 0.3333333333333333, 150_000),
      ],
    },
  ];
  sweeps.forEach((sweep, n) => {
    const at = new Date(T0 + n * 300_000 + n);
    const runId = store.startRun({
      accountId: sweep.account,
      endpoint: ENDPOINT,
      publicKey: 'pk-demo',
      startedAt: new Date(at.getTime() - 1500),
    });
    if ('fail' in sweep) {
      store.failRun(runId, {
        status: 'failed',
        code: 'QFEX_TIMEOUT',
        message: 'no page in time',
        pages: 1,
        finishedAt: at,
      });
      return;
    }
    store.commitSweep(runId, {
      accountId: sweep.account,
      observedAt: at,
      finishedAt: new Date(at.getTime() + 7),
      tiers: sweep.tiers,
      pages: 1,
      maxRemovalRatio: 1,
    });
  });
  // A running run (as a crash leaves it) and the alert tables, so every table has rows.
  store.startRun({ accountId: 'primary', endpoint: ENDPOINT, publicKey: null, startedAt: new Date(T0 + 10 * 300_000) });
}

const TABLES: Record<string, string> = {
  meta: 'key',
  run_ledger: 'run_id',
  tier_version: 'version_id',
  alert_outbox: 'outbox_id',
  alert_state: 'key',
};

/** Copies every row of the SQLite tables into Postgres, ids included (what an import would do). */
async function copyIntoPostgres(sqlite: Database.Database, client: pg.Client): Promise<void> {
  for (const [table, key] of Object.entries(TABLES)) {
    const rows = sqlite.prepare(`SELECT * FROM ${table} ORDER BY ${key}`).all() as Array<Record<string, unknown>>;
    for (const row of rows) {
      const names = Object.keys(row);
      await client.query(
        `INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`,
        Object.values(row),
      );
    }
  }
}

test(
  'same answers: a history written by the SQLite store, copied into Postgres, reads back identically from every table and view',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const { dir, dbPath } = tempSqlite();
    const db = openDatabase(dbPath);
    const { client } = await migratedPostgres(server);
    try {
      writeSqliteHistory(new HistoryStore(db));
      db.sqlite
        .prepare(
          `INSERT INTO alert_outbox (notification_id, kind, url, format, run_id, created_at, body) VALUES ('n1', 'changes', 'https://hooks.example/a', 'json', 1, ?, '{}')`,
        )
        .run(new Date(T0 + 999).toISOString());
      db.sqlite
        .prepare(`INSERT INTO alert_state (key, value, updated_at) VALUES ('stale', 'no', ?)`)
        .run(new Date(T0 + 5).toISOString());
      await copyIntoPostgres(db.sqlite, client);
      // The views print UTC whatever the session's zone (Chatham: +13:45 in January).
      await client.query(`SET TIME ZONE 'Pacific/Chatham'`);
      const relations = [...Object.keys(TABLES), ...Object.keys(VIEW_COLUMNS), 'tier_change_feed'];
      for (const relation of relations) {
        const columns = (
          db.sqlite.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').all(relation) as Array<{
            name: string;
          }>
        ).map((c) => c.name);
        const order = columns.map((name) => `${name} NULLS FIRST`).join(', ');
        const fromSqlite = db.sqlite.prepare(`SELECT * FROM ${relation} ORDER BY ${order}`).all();
        const fromPostgres = (await client.query(`SELECT * FROM ${relation} ORDER BY ${order}`)).rows;
        assert.ok(fromSqlite.length > 0, `${relation} has rows`);
        assert.deepEqual(fromPostgres, fromSqlite, relation);
      }
      // Spot checks of what the comparison protects.
      const floats = await client.query<{ m: number }>(
        `SELECT maintenance_margin AS m FROM tier_versions WHERE symbol = 'META_USD' LIMIT 1`,
      );
      assert.equal(floats.rows[0]?.m, 0.0125);
      const times = await client.query<{ observed_at: string }>(
        `SELECT observed_at FROM runs WHERE status = 'ok' ORDER BY run_id LIMIT 1`,
      );
      assert.equal(times.rows[0]?.observed_at, '2026-01-01T00:00:00.123Z');
    } finally {
      await client.end();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'identity text sorts byte by byte, as on SQLite, in a database whose default collation is ICU en-US',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const admin = await connectPg(server.adminUrl);
    const name = `icu_${process.pid}_${Date.now().toString(36)}`;
    try {
      await admin.query(
        `CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`,
      );
    } catch (error) {
      // A server built without ICU (Debian's has it) cannot make the database this test needs.
      if ((error as { code?: string }).code !== '0A000') throw error;
      t.skip(`this Postgres has no ICU: ${(error as Error).message}`);
      return;
    } finally {
      await admin.end();
    }
    const url = new URL(server.adminUrl);
    url.pathname = `/${name}`;
    await migratePostgres(url.toString());
    const client = await connectPg(url.toString());
    try {
      await client.query(
        `INSERT INTO run_ledger (run_id, account_id, endpoint, started_at, status) VALUES (1, 'primary', 'wss://x', now(), 'ok')`,
      );
      for (const [i, symbol] of ['meta-usd', 'META_USD', 'META-USD'].entries()) {
        await client.query(
          `INSERT INTO tier_version (account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, valid_from, run_id) VALUES ('primary', $1, '1', 0.1, 0.05, 1, $2, 1)`,
          [symbol, i + 1],
        );
      }
      const sorted = await client.query<{ symbol: string }>('SELECT symbol FROM tier_versions ORDER BY symbol');
      assert.deepEqual(
        sorted.rows.map((r) => r.symbol),
        ['META-USD', 'META_USD', 'meta-usd'],
      );
      // The database's own collation would have ordered them otherwise: the COLLATE "C" is doing the work.
      const icu = await client.query<{ symbol: string }>(
        'SELECT symbol FROM tier_versions ORDER BY symbol COLLATE "default"',
      );
      assert.notDeepEqual(
        icu.rows.map((r) => r.symbol),
        ['META-USD', 'META_USD', 'meta-usd'],
      );
    } finally {
      await client.end();
    }
  },
);

test(
  'regenerating both schemas with drizzle-kit leaves migrations/ and migrations-pg/ as committed',
  { timeout: 180_000 },
  (t) => {
    if (
      spawnSync('git', ['-C', ROOT, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' }).stdout.trim() !==
      'true'
    ) {
      t.skip('not a git checkout');
      return;
    }
    const status = () =>
      spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'migrations', 'migrations-pg'], { encoding: 'utf8' })
        .stdout;
    assert.equal(status(), '', 'migrations/ and migrations-pg/ are committed before regenerating');
    const drizzleKit = path.join(ROOT, 'node_modules', '.bin', 'drizzle-kit');
    for (const configFile of ['drizzle.config.ts', 'drizzle.pg.config.ts']) {
      const run = spawnSync(drizzleKit, ['generate', '--config', configFile], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(run.status, 0, `drizzle-kit generate --config ${configFile}: ${run.stdout}${run.stderr}`);
    }
    assert.equal(
      status(),
      '',
      'a schema change without its migration: run npm run db:generate / db:generate:pg and commit the output',
    );
  },
);
