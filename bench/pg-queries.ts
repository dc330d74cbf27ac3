/**
 * The query commands' questions on both backends side by side (issue 15): one history — 2,000 tiers
 * swept hourly for two weeks, 1% of them changed at each sweep — stored alike by the SQLite store
 * and by the Postgres sweep writer, then asked the same questions through the read seam the
 * commands use (HistorySource: SqliteHistorySource in process, PgHistorySource in one read-only
 * session on loopback): a snapshot of one symbol and of the whole exchange, a one-week diff,
 * `changes --since 7d` and one symbol's history. Each figure is the median of repeated calls, the
 * two answers are required to be identical (a figure for a wrong answer measures nothing), and
 * Postgres is held to 2× SQLite for the same question in the same run.
 *
 * The history is modest on purpose: it is stored sweep by sweep on both (the Postgres side through
 * the fenced writer, as the daemon stores it), and `--only pg` must stay within a few minutes.
 */
import path from 'node:path';
import type { Tier } from '../src/history/tier.ts';
import { silentLogger } from '../src/log.ts';
import { isAsyncRows } from '../src/output/table.ts';
import type { Filters } from '../src/query/filters.ts';
import { SqliteHistorySource, type HistorySource } from '../src/query/source.ts';
import { openDatabase } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { LeaderLease } from '../src/store/pg/lease.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { PgHistorySource } from '../src/store/pg/queries.ts';
import { PgSweepWriter } from '../src/store/pg/sweep-writer.ts';
import type { PgServer } from '../test/helpers/pg-throwaway.ts';
import { changed, sweepInput } from './pg.ts';
import { checkTarget, median, nowMs, round, type TargetCheck } from './stats.ts';
import { syntheticTiers } from './tiers.ts';

const TIERS = 2_000;
const SWEEP_EVERY_MS = 60 * 60_000;
const SWEEPS = 14 * 24;
const START = Date.parse('2026-01-01T00:00:00.000Z');
const WEEK_MS = 7 * 86_400_000;
const ENDPOINT = 'ws://127.0.0.1/';

export interface QueryPair {
  rows: number;
  sqlite_p50_ms: number;
  postgres_p50_ms: number;
  /** Postgres / SQLite. */
  ratio: number;
}

interface Question {
  name: string;
  what: string;
  ask: (source: HistorySource) => Promise<unknown[]>;
}

async function all<Row>(rows: Iterable<Row> | AsyncIterable<Row>): Promise<Row[]> {
  if (!isAsyncRows(rows)) return [...rows];
  const out: Row[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

/** The same script stored in both: the first sweep, then SWEEPS - 1 sweeps with 1% changed each. */
async function storeBoth(
  sqliteFile: string,
  server: PgServer,
): Promise<{ url: string; symbol: string; lastAt: string }> {
  const url = await server.createDatabase('bench_queries');
  await migratePostgres(url);
  const logger = silentLogger();
  const db = openDatabase(sqliteFile, { logger });
  const pool = createPgPool(url);
  let tiers: Tier[] = syntheticTiers(TIERS);
  let lastAt = '';
  try {
    const store = new HistoryStore(db, { logger });
    store.bindEndpoint(ENDPOINT);
    const lease = new LeaderLease(pool, { holder: 'bench-queries' });
    if ((await lease.tryAcquire()) === null) throw new Error('the benchmark could not take the lease');
    const writer = new PgSweepWriter(lease);
    for (let i = 0; i < SWEEPS; i += 1) {
      const at = START + i * SWEEP_EVERY_MS;
      if (i > 0) tiers = changed(tiers, i * 7);
      const run = { accountId: 'primary', endpoint: ENDPOINT, publicKey: 'bench', startedAt: new Date(at) };
      const input = sweepInput(tiers, at, 'primary');
      const local = store.commitSweep(store.startRun(run), input);
      const remote = await writer.commitSweep(await writer.startRun(run), input);
      if (local.changes.length !== remote.changes.length) {
        throw new Error(`sweep ${i}: SQLite stored ${local.changes.length} changes, Postgres ${remote.changes.length}`);
      }
      lastAt = input.observedAt.toISOString();
    }
    await lease.release();
  } finally {
    db.close();
    await pool.end();
  }
  return { url, symbol: tiers[Math.floor(TIERS / 2)]!.symbol, lastAt };
}

function questions(symbol: string, lastAt: string): Question[] {
  const weekAgo = new Date(Date.parse(lastAt) - WEEK_MS).toISOString();
  const none: Filters = {};
  return [
    {
      name: 'snapshot_symbol',
      what: 'snapshot of one symbol',
      ask: (s) => s.snapshot(lastAt, { symbols: [symbol] }),
    },
    { name: 'snapshot_all', what: 'snapshot of the whole exchange', ask: (s) => s.snapshot(lastAt, none) },
    { name: 'diff_week', what: 'diff over one week', ask: (s) => s.diff(weekAgo, lastAt, none) },
    {
      name: 'changes_7d',
      what: 'changes --since 7d',
      ask: async (s) => all(await s.changes({ since: weekAgo }, none, {})),
    },
    { name: 'history_symbol', what: "one symbol's history", ask: (s) => s.history(symbol, none) },
  ];
}

async function medianOf(source: HistorySource, question: Question, repeats: number): Promise<number> {
  await question.ask(source); // warm-up: statement caches, the server's buffers
  const samples: number[] = [];
  for (let i = 0; i < repeats; i += 1) {
    const start = nowMs();
    await question.ask(source);
    samples.push(nowMs() - start);
  }
  return median(samples);
}

export async function benchPgQueries(
  server: PgServer,
  dir: string,
  options: { quick: boolean; progress: (message: string) => void },
): Promise<{ history: string; by_query: Record<string, QueryPair>; targets: Record<string, TargetCheck> }> {
  options.progress(`pg: queries, storing ${SWEEPS} hourly sweeps of ${TIERS.toLocaleString('en')} tiers in both`);
  const sqliteFile = path.join(dir, 'queries.db');
  const { url, symbol, lastAt } = await storeBoth(sqliteFile, server);
  const repeats = options.quick ? 5 : 15;
  const db = openDatabase(sqliteFile, { readonly: true });
  const sqlite = new SqliteHistorySource(db, () => db.close());
  const postgres = await PgHistorySource.open(url);
  const byQuery: Record<string, QueryPair> = {};
  const targets: Record<string, TargetCheck> = {};
  try {
    for (const question of questions(symbol, lastAt)) {
      options.progress(`pg: ${question.what}, ${repeats} repeats on each backend`);
      const [fromSqlite, fromPostgres] = [await question.ask(sqlite), await question.ask(postgres)];
      if (JSON.stringify(fromSqlite) !== JSON.stringify(fromPostgres)) {
        throw new Error(`${question.what}: the two backends answered differently`);
      }
      if (fromSqlite.length === 0) throw new Error(`${question.what}: an empty answer measures nothing`);
      const sqliteMs = await medianOf(sqlite, question, repeats);
      const postgresMs = await medianOf(postgres, question, repeats);
      byQuery[question.name] = {
        rows: fromSqlite.length,
        sqlite_p50_ms: round(sqliteMs),
        postgres_p50_ms: round(postgresMs),
        ratio: round(postgresMs / sqliteMs, 2),
      };
      targets[`pg_query_${question.name}`] = checkTarget({
        target: `Postgres ${question.what} (${fromSqlite.length} rows) ≤ 2× SQLite`,
        value: postgresMs,
        unit: 'ms (p50)',
        baseline: sqliteMs,
        baselineName: 'SQLite, same question, same history',
        ratioLimit: { max: 2 },
      });
    }
  } finally {
    await sqlite.close();
    await postgres.close();
  }
  return {
    history: `${TIERS} tiers, ${SWEEPS} hourly sweeps, 1% changed per sweep; asked at ${lastAt}`,
    by_query: byQuery,
    targets,
  };
}
