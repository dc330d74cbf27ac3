/**
 * One sweep script stored twice: in a SQLite file by the store the daemon uses (HistoryStore), and
 * in a Postgres database by the fenced writer (PgSweepWriter under a leadership lease), run by run,
 * so both hold the same history with the same run ids. Refused sweeps (CLOCK_BEHIND,
 * MASS_REMOVAL) are refused by both and recorded as failed runs, as the daemon does.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type pg from 'pg';
import { isTierwatchError } from '../../src/errors.ts';
import type { Tier } from '../../src/history/tier.ts';
import type { StoreDb } from '../../src/store/db.ts';
import { HistoryStore } from '../../src/store/history-store.ts';
import { LeaderLease } from '../../src/store/pg/lease.ts';
import { PgSweepWriter } from '../../src/store/pg/sweep-writer.ts';

export const TWIN_ENDPOINT = 'wss://qfex.example/ws';
export const TWIN_ACCOUNTS = ['primary', 'sub-1'];
// Symbols a non-C collation would order differently; floats that must survive exactly.
export const TWIN_SYMBOLS = ['META_USD', 'meta-usd', 'META-USD', 'BTC-USD'];
const LEVERAGES = ['1', '2.5', '20'];
const MARGINS = [0.0125, 0.1, 0.30000000000000004, 0.6666666666666666];
const NOTIONALS = [150_000, 1e6, 12_345.678];
export const TWIN_T0 = Date.UTC(2026, 0, 1, 0, 0, 0, 123);

export interface TwinStep {
  account: string;
  /** Milliseconds after the previous step; 0 and negative ones make CLOCK_BEHIND. */
  advanceMs: number;
  fail: boolean;
  entries: Array<{
    symbol: string;
    leverage: string;
    im: number;
    mm: number;
    notional: number;
    exchangeId?: string | null;
  }>;
}

export const twinStep: fc.Arbitrary<TwinStep> = fc.record({
  account: fc.constantFrom(...TWIN_ACCOUNTS),
  advanceMs: fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 1, max: 600_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: -5000, max: 0 }) },
  ),
  fail: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  entries: fc.array(
    fc.record({
      symbol: fc.constantFrom(...TWIN_SYMBOLS),
      leverage: fc.constantFrom(...LEVERAGES),
      im: fc.constantFrom(...MARGINS),
      mm: fc.constantFrom(...MARGINS),
      notional: fc.constantFrom(...NOTIONALS),
      exchangeId: fc.option(fc.constantFrom('r1', 'r2')),
    }),
    { minLength: 1, maxLength: 8 },
  ),
});

function tiersOf(step: TwinStep): Tier[] {
  const seen = new Map<string, Tier>();
  for (const e of step.entries) {
    seen.set(`${e.symbol}\u0000${e.leverage}`, {
      symbol: e.symbol,
      leverage: e.leverage,
      initial_margin: e.im,
      maintenance_margin: e.mm,
      max_notional: e.notional,
      exchange_id: e.exchangeId ?? null,
    });
  }
  return [...seen.values()];
}

/** A run of the script: its id and the instant it observed (null when it failed or was refused). */
export interface TwinRun {
  runId: number;
  observedAt: number | null;
}

/** What a store call gave: its outcome, or the code and message of the TierwatchError it threw. */
async function settle(work: () => unknown): Promise<{ ok: unknown } | { code: string; message: string }> {
  try {
    return { ok: await work() };
  } catch (error) {
    if (!isTierwatchError(error)) throw error;
    return { code: error.code, message: error.message };
  }
}

/**
 * Stores `steps` in both: `db` (a fresh SQLite history) and the Postgres database behind `pool`
 * (migrated and empty). Returns the runs, the same on both.
 */
export async function storeTwice(db: StoreDb, pool: pg.Pool, steps: readonly TwinStep[]): Promise<TwinRun[]> {
  const store = new HistoryStore(db);
  const lease = new LeaderLease(pool, { holder: 'twin' });
  assert.ok((await lease.tryAcquire()) !== null, 'the twin writer leads');
  const writer = new PgSweepWriter(lease);
  store.bindEndpoint(TWIN_ENDPOINT);
  const runs: TwinRun[] = [];
  let now = TWIN_T0;
  for (const step of steps) {
    now += step.advanceMs;
    const start = {
      accountId: step.account,
      endpoint: TWIN_ENDPOINT,
      publicKey: 'pk-demo',
      startedAt: new Date(now - 1500),
    };
    const runId = store.startRun(start);
    assert.equal(await writer.startRun(start), runId);
    const fail = async (code: string, message: string, finishedAt: number) => {
      const failure = { status: 'failed' as const, code, message, pages: 1, finishedAt: new Date(finishedAt) };
      store.failRun(runId, failure);
      await writer.failRun(runId, failure);
      runs.push({ runId, observedAt: null });
    };
    if (step.fail) {
      await fail('QFEX_TIMEOUT', 'no page in time', now);
      continue;
    }
    const sweep = {
      accountId: step.account,
      observedAt: new Date(now),
      finishedAt: new Date(now + 3),
      tiers: tiersOf(step),
      pages: 1,
      maxRemovalRatio: 0.5,
    };
    const fromSqlite = await settle(() => store.commitSweep(runId, sweep));
    const fromPostgres = await settle(() => writer.commitSweep(runId, sweep));
    assert.deepEqual(fromPostgres, fromSqlite);
    if ('code' in fromSqlite) await fail(fromSqlite.code, fromSqlite.message, now + 3);
    else runs.push({ runId, observedAt: now });
  }
  return runs;
}
