/**
 * The read seam of the query commands: one async interface over either backend. The SQLite side
 * wraps the synchronous query functions of this folder unchanged (the web view and the benchmarks
 * call those directly); the Postgres side (src/store/pg/queries.ts) runs the same questions, built
 * by the same functions in the Postgres dialect, and shapes the rows with the same code, so both
 * give the same rows in the same order.
 *
 * Errors are the same on both: DB_EMPTY when the history does not reach back to an instant asked
 * about, USAGE when a diff's FROM is after its TO.
 */
import type { AccountHealth } from '../collect/health.ts';
import type { Rows } from '../output/table.ts';
import type { HistoryBounds } from './bounds.ts';
import { historyBounds } from './bounds.ts';
import { baselineRowsBetween, changesBetween, type FeedFilters, type FeedRow, type TimeWindow } from './changes.ts';
import { diffBetween, type DiffRow } from './diff.ts';
import type { Filters } from './filters.ts';
import { symbolHistory } from './history.ts';
import { cachedStatement, type HistoryReader } from './reader.ts';
import { listRuns, type RunRow, type RunsQuery } from './runs.ts';
import { snapshotAt, type VersionRow } from './snapshot.ts';
import { symbolSuggestions } from './symbol-hint.ts';

/** What `run:<id>` resolves from: the run's observed_at (null when it never observed) and status. */
export type RunInstant = { observed_at: string | null; status: string };

/** The run's RunInstant, from the `runs` view (the same text on both backends). */
export const RUN_INSTANT_SQL = 'SELECT observed_at, status FROM runs WHERE run_id = ?';

/** The accounts with a successful run (the web overview's accounts when none are configured). */
export const OK_ACCOUNTS_SQL = "SELECT DISTINCT account_id FROM runs WHERE status = 'ok'";

/** One account's last success, from the `runs` view (the same text on both backends). */
export const LAST_SUCCESS_SQL = "SELECT max(observed_at) AS at FROM runs WHERE status = 'ok' AND account_id = ?";

export interface HistorySource {
  /** The first and last successful sweeps, or null when none has succeeded. */
  bounds(): Promise<HistoryBounds | null>;
  /** A run's observed_at and status, or undefined when there is no such run. */
  runInstant(runId: number): Promise<RunInstant | undefined>;
  /** Every tier at `at` (ISO), by account, symbol and numeric leverage; DB_EMPTY before the history. */
  snapshot(at: string, filters: Filters): Promise<VersionRow[]>;
  /** The net differences between two instants (ISO); USAGE when from > to, DB_EMPTY before the history. */
  diff(from: string, to: string, filters: Filters): Promise<DiffRow[]>;
  /**
   * The change feed in the window, oldest first, read lazily: on SQLite an iterator over the
   * statement, on Postgres a cursor read in batches. The source is busy until it ends.
   */
  changes(window: TimeWindow, filters: Filters, feed: FeedFilters): Promise<Rows<FeedRow>>;
  /** How many baseline rows the same question would give with the baseline included. */
  baselineRows(window: TimeWindow, filters: Filters, feed: FeedFilters): Promise<number>;
  /** Every version of the symbol (a pattern with `*` allowed), by valid_from, account, numeric leverage. */
  history(symbol: string, filters: Filters): Promise<VersionRow[]>;
  /** The runs asked for, oldest first. */
  runs(query: RunsQuery): Promise<RunRow[]>;
  /** The accounts with at least one successful run, in no particular order. */
  okAccounts(): Promise<string[]>;
  /** Each account's last successful sweep (null when it has none), in the order given. */
  lastSuccesses(accountIds: readonly string[]): Promise<AccountHealth[]>;
  /** For symbol patterns that match nothing, the symbols they match ignoring case (at most five). */
  symbolSuggestions(filters: Filters): Promise<string[]>;
  /** Releases the connection. */
  close(): Promise<void>;
}

/** A synchronous read as a promise: its value, or its error as a rejection. */
function answer<T>(read: () => T): Promise<T> {
  return Promise.resolve().then(read);
}

/** A SQLite history as a HistorySource: the synchronous query functions, answered at once. */
export class SqliteHistorySource implements HistorySource {
  readonly #db: HistoryReader;
  readonly #close: () => void;

  /** `close` is what close() does: closing a connection the source was given to own. */
  constructor(db: HistoryReader, close: () => void = () => {}) {
    this.#db = db;
    this.#close = close;
  }

  bounds(): Promise<HistoryBounds | null> {
    return answer(() => historyBounds(this.#db));
  }

  runInstant(runId: number): Promise<RunInstant | undefined> {
    return answer(() => cachedStatement<RunInstant>(this.#db, RUN_INSTANT_SQL).get(runId));
  }

  snapshot(at: string, filters: Filters): Promise<VersionRow[]> {
    return answer(() => snapshotAt(this.#db, at, filters));
  }

  diff(from: string, to: string, filters: Filters): Promise<DiffRow[]> {
    return answer(() => diffBetween(this.#db, from, to, filters));
  }

  changes(window: TimeWindow, filters: Filters, feed: FeedFilters): Promise<Rows<FeedRow>> {
    return answer(() => changesBetween(this.#db, window, filters, feed));
  }

  baselineRows(window: TimeWindow, filters: Filters, feed: FeedFilters): Promise<number> {
    return answer(() => baselineRowsBetween(this.#db, window, filters, feed));
  }

  history(symbol: string, filters: Filters): Promise<VersionRow[]> {
    return answer(() => symbolHistory(this.#db, symbol, filters));
  }

  runs(query: RunsQuery): Promise<RunRow[]> {
    return answer(() => listRuns(this.#db, query));
  }

  okAccounts(): Promise<string[]> {
    return answer(() =>
      cachedStatement<{ account_id: string }>(this.#db, OK_ACCOUNTS_SQL)
        .all()
        .map((row) => row.account_id),
    );
  }

  lastSuccesses(accountIds: readonly string[]): Promise<AccountHealth[]> {
    return answer(() => {
      const lastSuccess = cachedStatement<{ at: string | null }>(this.#db, LAST_SUCCESS_SQL);
      return accountIds.map((accountId) => ({ accountId, lastSuccessAt: lastSuccess.get(accountId)?.at ?? null }));
    });
  }

  symbolSuggestions(filters: Filters): Promise<string[]> {
    return answer(() => symbolSuggestions(this.#db, filters));
  }

  close(): Promise<void> {
    return answer(this.#close);
  }
}
