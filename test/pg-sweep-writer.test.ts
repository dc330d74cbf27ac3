/**
 * The Postgres sweep writer (src/store/pg/sweep-writer.ts) against the SQLite store, on random sweep
 * scripts (fast-check): the same sweeps through both give the same outcomes, the same refusals
 * (CLOCK_BEHIND, MASS_REMOVAL: same code, same message, nothing stored) and the same rows in every
 * table and view. And the writer is fenced: a collector that lost the lease stores no sweep.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type pg from 'pg';
import { isTierwatchError } from '../src/errors.ts';
import type { Tier } from '../src/history/tier.ts';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { LeaderLease } from '../src/store/pg/lease.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { PgSweepWriter } from '../src/store/pg/sweep-writer.ts';
import { VIEW_COLUMNS } from '../src/store/schema.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';
import { storeTwice, twinStep, TWIN_ENDPOINT as ENDPOINT, TWIN_T0 as T0 } from './helpers/twin-history.ts';

after(stopPgServer);

const RELATIONS = [
  'meta',
  'run_ledger',
  'tier_version',
  'alert_outbox',
  'alert_state',
  ...Object.keys(VIEW_COLUMNS),
  'tier_change_feed',
];

async function compareAll(db: StoreDb, pool: pg.Pool, leaderEpoch: number): Promise<void> {
  for (const relation of RELATIONS) {
    const columns = (
      db.sqlite.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').all(relation) as Array<{ name: string }>
    ).map((c) => c.name);
    const order = columns.map((name) => `${name} NULLS FIRST`).join(', ');
    const fromSqlite = db.sqlite.prepare(`SELECT * FROM ${relation} ORDER BY ${order}`).all() as Array<
      Record<string, unknown>
    >;
    const fromPostgres = (await pool.query<Record<string, unknown>>(`SELECT * FROM ${relation} ORDER BY ${order}`))
      .rows;
    if (columns.includes('leader_epoch')) {
      // The one column that differs by design: SQLite has no leader, the writer led under epoch 1.
      assert.deepEqual(
        fromSqlite.map((row) => row.leader_epoch),
        fromSqlite.map(() => null),
        relation,
      );
      assert.deepEqual(
        fromPostgres.map((row) => row.leader_epoch),
        fromPostgres.map(() => leaderEpoch),
        relation,
      );
      for (const row of [...fromSqlite, ...fromPostgres]) delete row.leader_epoch;
    }
    assert.deepEqual(fromPostgres, fromSqlite, relation);
  }
}

test(
  'random sweep scripts through the SQLite store and the Postgres writer: same outcomes, same refusals, same tables and views',
  { timeout: 300_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgwriter-'));
    let caseNumber = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(twinStep, { minLength: 1, maxLength: 12 }), async (steps) => {
          caseNumber += 1;
          const db = openDatabase(path.join(dir, `case-${caseNumber}.db`));
          const url = await server.createDatabase('writer');
          await migratePostgres(url);
          const pool = createPgPool(url);
          try {
            await storeTwice(db, pool, steps);
            // The SQLite store binds its endpoint in meta; the Postgres writer does not.
            await pool.query(
              `INSERT INTO meta (key, value) SELECT key, value FROM (VALUES ('endpoint', $1::text)) AS m(key, value)`,
              [db.sqlite.prepare(`SELECT value FROM meta WHERE key = 'endpoint'`).pluck().get()],
            );
            await compareAll(db, pool, 1);
          } finally {
            db.close();
            await pool.end();
          }
        }),
        { numRuns: 15 },
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a collector that lost the lease stores no sweep: DB_LEADERSHIP_LOST, the run stays running, no version written',
  { timeout: 60_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const url = await server.createDatabase('writerfence');
    await migratePostgres(url);
    const pools = [createPgPool(url), createPgPool(url)];
    try {
      const a = new LeaderLease(pools[0]!, { holder: 'host-a', settings: { ttlMs: 1000 } });
      const b = new LeaderLease(pools[1]!, { holder: 'host-b', settings: { ttlMs: 1000 } });
      assert.equal(await a.tryAcquire(), 1);
      const writer = new PgSweepWriter(a);
      const runId = await writer.startRun({
        accountId: 'primary',
        endpoint: ENDPOINT,
        publicKey: null,
        startedAt: new Date(T0),
      });
      // The sweep takes longer than the lease (a slow exchange, a pause): b takes over meanwhile.
      const deadline = Date.now() + 20_000;
      while ((await b.tryAcquire()) === null) {
        assert.ok(Date.now() < deadline, 'b takes over once a’s lease expired');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const sweep = {
        accountId: 'primary',
        observedAt: new Date(T0 + 1000),
        finishedAt: new Date(T0 + 1003),
        tiers: [
          {
            symbol: 'BTC-USD',
            leverage: '20',
            initial_margin: 0.05,
            maintenance_margin: 0.025,
            max_notional: 1e6,
            exchange_id: null,
          },
        ],
        pages: 1,
        maxRemovalRatio: 0.5,
      };
      await assert.rejects(writer.commitSweep(runId, sweep), (error) => isTierwatchError(error, 'DB_LEADERSHIP_LOST'));
      const versions = await pools[1]!.query<{ n: number }>('SELECT count(*)::int AS n FROM tier_version');
      assert.equal(versions.rows[0]?.n, 0);
      const run = await pools[1]!.query<{ status: string }>('SELECT status FROM runs WHERE run_id = $1', [runId]);
      assert.equal(run.rows[0]?.status, 'running', 'left for the new leader to mark abandoned');
      // The new leader can store a sweep under its own epoch.
      const writerB = new PgSweepWriter(b);
      const runB = await writerB.startRun({
        accountId: 'primary',
        endpoint: ENDPOINT,
        publicKey: null,
        startedAt: new Date(T0 + 2000),
      });
      const outcome = await writerB.commitSweep(runB, {
        ...sweep,
        observedAt: new Date(T0 + 3000),
        finishedAt: new Date(T0 + 3003),
      });
      assert.equal(outcome.added, 1);
      assert.equal(outcome.baseline, true);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  },
);

test(
  'the writer keeps the current versions between sweeps only under its epoch: a takeover in between forces a reload and the history stays right',
  { timeout: 60_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const url = await server.createDatabase('writercache');
    await migratePostgres(url);
    const pools = [createPgPool(url), createPgPool(url)];
    try {
      const a = new LeaderLease(pools[0]!, { holder: 'host-a' });
      const b = new LeaderLease(pools[1]!, { holder: 'host-b' });
      const tier = (symbol: string, im: number): Tier => ({
        symbol,
        leverage: '20',
        initial_margin: im,
        maintenance_margin: im / 2,
        max_notional: 1e6,
        exchange_id: null,
      });
      let clock = T0;
      const sweep = async (writer: PgSweepWriter, tiers: Tier[]) => {
        clock += 60_000;
        const runId = await writer.startRun({
          accountId: 'primary',
          endpoint: ENDPOINT,
          publicKey: null,
          startedAt: new Date(clock - 10),
        });
        const outcome = await writer.commitSweep(runId, {
          accountId: 'primary',
          observedAt: new Date(clock),
          finishedAt: new Date(clock + 3),
          tiers,
          pages: 1,
          maxRemovalRatio: 0.5,
        });
        return outcome.changes.map((c) => `${c.change} ${c.symbol} ${c.old_initial_margin}→${c.new_initial_margin}`);
      };

      // a leads (epoch 1) and sweeps twice: the second sweep works from its in-memory copy.
      assert.equal(await a.tryAcquire(), 1);
      const writerA = new PgSweepWriter(a);
      assert.deepEqual(await sweep(writerA, [tier('BTC-USD', 0.05), tier('ETH-USD', 0.1)]), [
        'added BTC-USD null→0.05',
        'added ETH-USD null→0.1',
      ]);
      assert.deepEqual(await sweep(writerA, [tier('BTC-USD', 0.05), tier('ETH-USD', 0.1)]), []);

      // a steps down; b takes over (epoch 2) and stores a change a's copy does not know of.
      await a.release();
      assert.equal(await b.tryAcquire(), 2);
      const writerB = new PgSweepWriter(b);
      assert.deepEqual(await sweep(writerB, [tier('BTC-USD', 0.07), tier('ETH-USD', 0.1), tier('SOL-USD', 0.2)]), [
        'changed BTC-USD 0.05→0.07',
        'added SOL-USD null→0.2',
      ]);

      // a leads again (epoch 3) and sees what it saw before b's sweep. Working from its old copy it
      // would find nothing to store (and leave b's values as current); under the new epoch it
      // reloads and stores the change back and SOL-USD's removal.
      await b.release();
      assert.equal(await a.tryAcquire(), 3);
      assert.deepEqual(await sweep(writerA, [tier('BTC-USD', 0.05), tier('ETH-USD', 0.1)]), [
        'removed SOL-USD 0.2→null',
        'changed BTC-USD 0.07→0.05',
      ]);
      // Its copy is current again: the next sweep under the same epoch changes one tier, no more.
      assert.deepEqual(await sweep(writerA, [tier('BTC-USD', 0.05), tier('ETH-USD', 0.11)]), [
        'changed ETH-USD 0.1→0.11',
      ]);

      const open = await pools[0]!.query<{ symbol: string; initial_margin: number; n: number }>(
        `SELECT symbol, initial_margin, count(*) OVER (PARTITION BY symbol, leverage)::int AS n
           FROM tier_version WHERE valid_to IS NULL ORDER BY symbol`,
      );
      assert.deepEqual(open.rows, [
        { symbol: 'BTC-USD', initial_margin: 0.05, n: 1 },
        { symbol: 'ETH-USD', initial_margin: 0.11, n: 1 },
      ]);
      // Each run records the epoch of the leader that stored it.
      const runs = await pools[0]!.query<{ run_id: number; leader_epoch: number }>(
        'SELECT run_id, leader_epoch FROM runs ORDER BY run_id',
      );
      assert.deepEqual(
        runs.rows.map((row) => [row.run_id, row.leader_epoch]),
        [
          [1, 1],
          [2, 1],
          [3, 2],
          [4, 3],
          [5, 3],
        ],
      );
      const feed = await pools[0]!.query<{ run_id: number; change: string; symbol: string }>(
        'SELECT run_id, change, symbol FROM tier_changes ORDER BY run_id, change, symbol',
      );
      assert.deepEqual(
        feed.rows.map((row) => `${row.run_id} ${row.change} ${row.symbol}`),
        [
          '1 added BTC-USD',
          '1 added ETH-USD',
          '3 added SOL-USD',
          '3 changed BTC-USD',
          '4 changed BTC-USD',
          '4 removed SOL-USD',
          '5 changed ETH-USD',
        ],
      );
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  },
);
