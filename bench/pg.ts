/**
 * Postgres beside SQLite (issue 15): the same sweeps stored by the SQLite store (HistoryStore) and
 * by the Postgres sweep writer (PgSweepWriter, through a leadership lease), at 1,000, 10,000 and
 * 100,000 tiers: the first sweep (every tier added), steady sweeps with nothing changed and with 1%
 * of the tiers changed, and — Postgres only — a steady sweep right after a takeover, when the
 * writer must read the current versions back (what every sweep cost before the writer kept them).
 * Each figure is startRun + commitSweep: the store's part of a sweep, without the paging, which is
 * the same code on both backends. Before the first sweep each backend stores a one-tier sweep of
 * another account, so neither first figure is the cost of a cold process or a cold connection.
 * Target: Postgres within 2× of SQLite for the same work. The query commands' questions are
 * measured the same way, side by side, by pg-queries.ts.
 *
 * The server is a throwaway Postgres on loopback (test/helpers/pg-throwaway.ts, durability off:
 * fsync and synchronous_commit off); SQLite runs as tierwatch opens it (WAL, synchronous=NORMAL),
 * so neither waits for the disk on a commit. `TIERWATCH_BENCH_PG_URL` uses a running server
 * instead (a database is created on it per size).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Tier } from '../src/history/tier.ts';
import { silentLogger } from '../src/log.ts';
import { openDatabase } from '../src/store/db.ts';
import { HistoryStore, type SweepOutcome } from '../src/store/history-store.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { LeaderLease } from '../src/store/pg/lease.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { PgSweepWriter } from '../src/store/pg/sweep-writer.ts';
import { findPgBin, serverAt, startThrowawayPostgres, type PgServer } from '../test/helpers/pg-throwaway.ts';
import { checkTarget, median, nowMs, round, type TargetCheck } from './stats.ts';
import { syntheticTiers } from './tiers.ts';
import { benchPgQueries } from './pg-queries.ts';

const SIZES = [1_000, 10_000, 100_000];
const CHANGE_FRACTION = 0.01;
const SWEEP_INTERVAL_MS = 5 * 60_000;
const START = Date.parse('2026-01-01T00:00:00.000Z');
const ENDPOINT = 'ws://127.0.0.1/';

/** One backend's figures for one size (ms; steady figures are medians). */
export interface BackendFigures {
  first_sweep_ms: number;
  steady_unchanged_p50_ms: number;
  steady_changed_1pct_p50_ms: number;
}

export interface PgSizeResult {
  tiers: number;
  repeats: number;
  sqlite: BackendFigures;
  postgres: BackendFigures & { steady_after_takeover_p50_ms: number };
  /** Postgres / SQLite, per figure. */
  ratio: { first_sweep: number; steady_unchanged: number; steady_changed_1pct: number };
}

/** The store's side of a sweep, whichever backend: startRun then commitSweep. */
type SweepFn = (tiers: Tier[], at: number, account?: string) => Promise<SweepOutcome>;

/** A copy of `tiers` with CHANGE_FRACTION of them changed (new objects: a store may hold the old ones). */
export function changed(tiers: Tier[], shift: number): Tier[] {
  const next = tiers.slice();
  const count = Math.max(1, Math.round(tiers.length * CHANGE_FRACTION));
  const stride = Math.floor(tiers.length / count);
  for (let i = 0; i < count; i += 1) {
    const index = (i * stride + shift) % tiers.length;
    next[index] = { ...next[index]!, max_notional: next[index]!.max_notional + 1000 };
  }
  return next;
}

export function sweepInput(tiers: Tier[], at: number, accountId: string) {
  return {
    accountId,
    observedAt: new Date(at + 900),
    finishedAt: new Date(at + 950),
    tiers,
    pages: Math.ceil(tiers.length / 999) + 1,
    maxRemovalRatio: 0.5,
  };
}

/** Checks an outcome: a benchmark that stored the wrong thing measured nothing. */
function expectChanges(outcome: SweepOutcome, expected: number, what: string): void {
  if (outcome.changes.length !== expected) {
    throw new Error(`${what}: stored ${outcome.changes.length} changes, expected ${expected}`);
  }
}

async function timed(sweep: SweepFn, tiers: Tier[], at: number, expected: number, what: string): Promise<number> {
  const start = nowMs();
  const outcome = await sweep(tiers, at);
  const elapsed = nowMs() - start;
  expectChanges(outcome, expected, what);
  return elapsed;
}

/**
 * Runs the same script through one backend: the first sweep, a warm-up, then `repeats` unchanged
 * and `repeats` changed sweeps, alternating. Returns the figures and the instant of the last sweep.
 */
async function script(
  sweep: SweepFn,
  tiers: Tier[],
  repeats: number,
  what: string,
): Promise<BackendFigures & { last: Tier[]; at: number }> {
  let at = START;
  const first = await timed(sweep, tiers, at, tiers.length, `${what} first sweep`);
  at += SWEEP_INTERVAL_MS;
  await timed(sweep, tiers, at, 0, `${what} warm-up`);
  const unchanged: number[] = [];
  const withChanges: number[] = [];
  let current = tiers;
  const perChange = Math.max(1, Math.round(tiers.length * CHANGE_FRACTION));
  for (let i = 0; i < repeats; i += 1) {
    at += SWEEP_INTERVAL_MS;
    unchanged.push(await timed(sweep, current, at, 0, `${what} unchanged sweep`));
    at += SWEEP_INTERVAL_MS;
    current = changed(current, i);
    withChanges.push(await timed(sweep, current, at, perChange, `${what} changed sweep`));
  }
  return {
    first_sweep_ms: round(first),
    steady_unchanged_p50_ms: round(median(unchanged)),
    steady_changed_1pct_p50_ms: round(median(withChanges)),
    last: current,
    at,
  };
}

async function sqliteFigures(tiers: Tier[], repeats: number, dir: string): Promise<BackendFigures> {
  const logger = silentLogger();
  const db = openDatabase(path.join(dir, `sqlite-${tiers.length}.db`), { logger });
  try {
    const store = new HistoryStore(db, { logger });
    store.bindEndpoint(ENDPOINT);
    const sweep: SweepFn = (list, at, account = 'primary') => {
      const runId = store.startRun({
        accountId: account,
        endpoint: ENDPOINT,
        publicKey: 'bench',
        startedAt: new Date(at),
      });
      return Promise.resolve(store.commitSweep(runId, sweepInput(list, at, account)));
    };
    await sweep(tiers.slice(0, 1), START, 'warm-up');
    const { last: _last, at: _at, ...figures } = await script(sweep, tiers, repeats, 'SQLite');
    return figures;
  } finally {
    db.close();
  }
}

async function postgresFigures(
  server: PgServer,
  tiers: Tier[],
  repeats: number,
): Promise<BackendFigures & { steady_after_takeover_p50_ms: number }> {
  const url = await server.createDatabase(`bench_${tiers.length}`);
  await migratePostgres(url);
  const pool = createPgPool(url);
  try {
    const writerFor = async (holder: string): Promise<{ lease: LeaderLease; sweep: SweepFn }> => {
      const lease = new LeaderLease(pool, { holder });
      if ((await lease.tryAcquire()) === null) throw new Error(`${holder} could not take the lease`);
      const writer = new PgSweepWriter(lease);
      const sweep: SweepFn = async (list, at, account = 'primary') => {
        const runId = await writer.startRun({
          accountId: account,
          endpoint: ENDPOINT,
          publicKey: 'bench',
          startedAt: new Date(at),
        });
        return writer.commitSweep(runId, sweepInput(list, at, account));
      };
      return { lease, sweep };
    };
    const first = await writerFor('bench-0');
    await first.sweep(tiers.slice(0, 1), START, 'warm-up');
    const { last, at, ...figures } = await script(first.sweep, tiers, repeats, 'Postgres');
    // After a takeover the writer reads the current versions back: each sample is a new leader's first sweep.
    const afterTakeover: number[] = [];
    let previous = first.lease;
    let when = at;
    for (let i = 0; i < repeats; i += 1) {
      await previous.release();
      const next = await writerFor(`bench-${i + 1}`);
      when += SWEEP_INTERVAL_MS;
      afterTakeover.push(await timed(next.sweep, last, when, 0, 'Postgres sweep after a takeover'));
      previous = next.lease;
    }
    return { ...figures, steady_after_takeover_p50_ms: round(median(afterTakeover)) };
  } finally {
    await pool.end();
  }
}

/**
 * The server's version, and the floor under every Postgres figure: the median time of one round
 * trip (`SELECT 1`) on this machine now. A sweep of a few tiers costs a handful of them (the fence,
 * the run's row, its update, COMMIT, for startRun and again for commitSweep), however fast the rest.
 */
async function serverFacts(server: PgServer): Promise<{ version: string; roundTripMs: number }> {
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    const version = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v;
    const samples: number[] = [];
    for (let i = 0; i < 201; i += 1) {
      const start = nowMs();
      await client.query('SELECT 1');
      if (i > 0) samples.push(nowMs() - start);
    }
    return { version: version ?? 'unknown', roundTripMs: median(samples) };
  } finally {
    await client.end();
  }
}

export async function benchPg(options: { quick: boolean; progress: (message: string) => void }) {
  const fromEnv = process.env.TIERWATCH_BENCH_PG_URL;
  if (fromEnv === undefined && findPgBin() === undefined) {
    return {
      skipped:
        'Postgres is not installed (apt-get install -y --no-install-recommends postgresql, or set TIERWATCH_BENCH_PG_URL)',
    };
  }
  const started = fromEnv === undefined ? await startThrowawayPostgres() : undefined;
  const server = started?.server ?? serverAt(fromEnv!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-bench-pg-'));
  try {
    const byTiers: Record<string, PgSizeResult> = {};
    for (const size of SIZES) {
      const repeats = options.quick ? 3 : size >= 100_000 ? 5 : 9;
      options.progress(`pg: ${size.toLocaleString('en')} tiers, ${repeats} repeats, SQLite then Postgres`);
      const tiers = syntheticTiers(size);
      const sqlite = await sqliteFigures(tiers, repeats, dir);
      const postgres = await postgresFigures(server, tiers, repeats);
      byTiers[String(size)] = {
        tiers: size,
        repeats,
        sqlite,
        postgres,
        ratio: {
          first_sweep: round(postgres.first_sweep_ms / sqlite.first_sweep_ms, 2),
          steady_unchanged: round(postgres.steady_unchanged_p50_ms / sqlite.steady_unchanged_p50_ms, 2),
          steady_changed_1pct: round(postgres.steady_changed_1pct_p50_ms / sqlite.steady_changed_1pct_p50_ms, 2),
        },
      };
    }
    const targets: Record<string, TargetCheck> = {};
    for (const [size, result] of Object.entries(byTiers)) {
      const label = Number(size).toLocaleString('en');
      const check = (name: string, what: string, value: number, baseline: number) => {
        targets[`pg_${name}_${size}`] = checkTarget({
          target: `Postgres ${what} of ${label} tiers ≤ 2× SQLite`,
          value,
          unit: 'ms (p50)',
          baseline,
          baselineName: 'SQLite, same sweeps',
          ratioLimit: { max: 2 },
        });
      };
      check('first', 'first sweep', result.postgres.first_sweep_ms, result.sqlite.first_sweep_ms);
      check(
        'steady_unchanged',
        'steady sweep (unchanged)',
        result.postgres.steady_unchanged_p50_ms,
        result.sqlite.steady_unchanged_p50_ms,
      );
      check(
        'steady_changed_1pct',
        'steady sweep (1% changed)',
        result.postgres.steady_changed_1pct_p50_ms,
        result.sqlite.steady_changed_1pct_p50_ms,
      );
    }
    // The query commands' questions, on a history of their own (pg-queries.ts).
    const queries = await benchPgQueries(server, dir, options);
    const facts = await serverFacts(server);
    return {
      postgres_version: facts.version,
      round_trip_p50_ms: round(facts.roundTripMs),
      server:
        fromEnv === undefined ? 'throwaway on loopback (fsync=off, synchronous_commit=off)' : 'TIERWATCH_BENCH_PG_URL',
      change_fraction: CHANGE_FRACTION,
      by_tiers: byTiers,
      queries: { history: queries.history, by_query: queries.by_query },
      targets: { ...targets, ...queries.targets },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await started?.stop();
  }
}
