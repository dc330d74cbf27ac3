/**
 * The one interface the collector (collect/sweep.ts, collect/daemon.ts) writes through, whichever
 * history it writes to: the SQLite HistoryStore (synchronous inside: better-sqlite3) or the Postgres
 * store (store/pg/sweep-store.ts: every write a fenced transaction). The collector awaits every
 * call, so a backend may answer at once or with a promise; the SQLite store fits as it is, and its
 * behaviour does not change.
 *
 * The sweep decisions (the diff, the guards, the clock check, the plan) are not here: they are pure
 * (src/history/*) and each backend only applies them.
 */
import type { CheckpointResult } from './db.ts';
import type { RunFailure, StartRunInput, SweepInput, SweepOutcome } from './history-store-types.ts';

type Awaitable<T> = T | Promise<T>;

export interface SweepStore {
  /** Binds the history to an endpoint on first use; a different one throws ENDPOINT_MISMATCH. Idempotent. */
  bindEndpoint(endpoint: string): Awaitable<void>;
  /** Records a 'running' run and returns its run_id. */
  startRun(input: StartRunInput): Awaitable<number>;
  /** Stores a complete sweep and marks the run ok, or stores nothing and throws. */
  commitSweep(runId: number, sweep: SweepInput): Awaitable<SweepOutcome>;
  /** Records a run's failure; a run no longer 'running' is left alone. */
  failRun(runId: number, failure: RunFailure): Awaitable<void>;
  /** Marks the runs a dead process (or a dead leader) left 'running' as 'abandoned'; returns how many. */
  markAbandonedRuns(now: Date): Awaitable<number>;
  /** Housekeeping after a committed sweep (SQLite's WAL checkpoint); null when there is none. Never throws. */
  checkpoint(): Awaitable<CheckpointResult | null>;
}
