/**
 * Where the history begins and ends: the observed_at of the first and the last successful run.
 * Both come from the partial index on successful runs, so asking costs microseconds.
 */
import { TierwatchError } from '../errors.ts';
import { cachedStatement, type HistoryReader } from './reader.ts';

export interface HistoryBounds {
  /** observed_at of the first successful run: nothing is known before it. */
  first_observed_at: string;
  /** observed_at of the last successful run: nothing is known after it either, but it is kept. */
  last_observed_at: string;
}

/** The bounds of the history, or null when no run has succeeded yet. */
export function historyBounds(db: HistoryReader): HistoryBounds | null {
  const first = cachedStatement<{ at: string | null }>(
    db,
    `SELECT min(observed_at) AS at FROM runs WHERE status = 'ok'`,
  ).get();
  const last = cachedStatement<{ at: string | null }>(
    db,
    `SELECT max(observed_at) AS at FROM runs WHERE status = 'ok'`,
  ).get();
  if (!first?.at || !last?.at) return null;
  return { first_observed_at: first.at, last_observed_at: last.at };
}

/**
 * The bounds, after checking that the history knows the state at `at` (ISO): throws
 * TierwatchError('DB_EMPTY') saying that the history is empty, or when it begins.
 */
export function requireHistoryAt(db: HistoryReader, at: string): HistoryBounds {
  return checkHistoryAt(historyBounds(db), at);
}

/** requireHistoryAt's check on bounds already read (either backend). */
export function checkHistoryAt(bounds: HistoryBounds | null, at: string): HistoryBounds {
  if (bounds === null) {
    throw new TierwatchError('DB_EMPTY', 'The history is empty: no sweep has succeeded yet (see `tierwatch runs`).');
  }
  if (at < bounds.first_observed_at) {
    throw new TierwatchError(
      'DB_EMPTY',
      `The history begins at ${bounds.first_observed_at}; nothing is known about ${at}.`,
      { details: { at, begins: bounds.first_observed_at } },
    );
  }
  return bounds;
}
