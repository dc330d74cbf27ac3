/**
 * The change feed: `tier_changes` rows in [since, until), oldest first, shaped for output with
 * `changed_columns` as an array and the old/new values grouped into `before` and `after`.
 */
import { TRACKED_COLUMNS, type TierValues, type TrackedColumn } from '../history/tier.ts';
import type { ChangeRecord } from '../store/history-store.ts';
import type { ChangeKind } from '../store/schema.ts';
import { filterCondition, hasExactSymbolsOnly, type Filters } from './filters.ts';
import { cachedStatement, isoOf, type HistoryReader } from './reader.ts';

/** A row of the `tier_changes` view as stored: the writer's record, with changed_columns as JSON text. */
export type ChangeViewRow = Omit<ChangeRecord, 'changed_columns'> & { changed_columns: string };

/** One change, as the output contract gives it. */
export interface ChangeRow {
  run_id: number;
  observed_at: string;
  account_id: string;
  symbol: string;
  leverage: string;
  change: ChangeKind;
  changed_columns: TrackedColumn[];
  before: TierValues | null;
  after: TierValues | null;
}

export interface TimeWindow {
  /** Inclusive; null = from the beginning. */
  since?: Date | string | null;
  /** Exclusive; null = up to now. */
  until?: Date | string | null;
}

/** The tracked values on one side of a view row, or null when that side is empty (added/removed). */
export function sideOf(row: ChangeViewRow, side: 'old' | 'new'): TierValues | null {
  const values = {} as TierValues;
  for (const column of TRACKED_COLUMNS) {
    const value = row[`${side}_${column}`];
    if (value === null) return null;
    values[column] = value;
  }
  return values;
}

export function toChangeRow(row: ChangeViewRow): ChangeRow {
  return {
    run_id: row.run_id,
    observed_at: row.observed_at,
    account_id: row.account_id,
    symbol: row.symbol,
    leverage: row.leverage,
    change: row.change,
    changed_columns: JSON.parse(row.changed_columns) as TrackedColumn[],
    before: sideOf(row, 'old'),
    after: sideOf(row, 'new'),
  };
}

const CHANGE_COLUMNS =
  'run_id, observed_at, account_id, symbol, leverage, change, changed_columns, old_initial_margin, new_initial_margin, ' +
  'old_maintenance_margin, new_maintenance_margin, old_max_notional, new_max_notional';

/** The SQL of the change feed and its named parameters (exported for the EXPLAIN test). */
export function changesSql(window: TimeWindow, filters: Filters): { sql: string; named: Record<string, string>; params: string[] } {
  const conditions: string[] = [];
  const named: Record<string, string> = {};
  if (window.since != null) {
    conditions.push('observed_at >= @since');
    named.since = isoOf(window.since);
  }
  if (window.until != null) {
    conditions.push('observed_at < @until');
    named.until = isoOf(window.until);
  }
  // With a time bound, the observed_at index is the one to walk, unless exact symbols are named
  // (then the (symbol, observed_at) and (account, symbol, observed_at) indexes are better still).
  const timeBound = window.since != null || window.until != null;
  const filter = filterCondition(filters, { indexable: !timeBound || hasExactSymbolsOnly(filters) });
  conditions.push(filter.sql);
  const sql =
    `SELECT ${CHANGE_COLUMNS} FROM tier_changes WHERE ${conditions.join(' AND ')} ` +
    'ORDER BY observed_at, run_id, account_id, symbol, CAST(leverage AS REAL)';
  return { sql, named, params: filter.params };
}

/**
 * The changes observed in [since, until), oldest first (then by run, account, symbol and numeric
 * leverage), as a lazy iterator: the caller can stream a year of changes without holding them.
 * The connection is busy until the iterator is finished or returned.
 */
export function changesBetween(db: HistoryReader, window: TimeWindow = {}, filters: Filters = {}): IterableIterator<ChangeRow> {
  const { sql, named, params } = changesSql(window, filters);
  return mapIterator(cachedStatement<ChangeViewRow>(db, sql).iterate(named, ...params), toChangeRow);
}

/** The columns the diff reads from each change, in this order (raw rows, for speed). */
export const WINDOW_COLUMNS = [
  'account_id', 'symbol', 'leverage', 'old_initial_margin', 'old_maintenance_margin', 'old_max_notional',
  'new_initial_margin', 'new_maintenance_margin', 'new_max_notional',
] as const;
export type WindowRow = [string, string, string, number | null, number | null, number | null, number | null, number | null, number | null];

/** The SQL of the diff's window read: parameters @after, @upTo, then the filter's. */
export function windowSql(filters: Filters): { sql: string; params: string[] } {
  const filter = filterCondition(filters, { indexable: hasExactSymbolsOnly(filters) });
  const sql =
    `SELECT ${WINDOW_COLUMNS.join(', ')} FROM tier_changes WHERE observed_at > @after AND observed_at <= @upTo AND ${filter.sql} ` +
    'ORDER BY observed_at';
  return { sql, params: filter.params };
}

/**
 * The changes with observed_at in (after, upTo], in time order, as raw arrays of WINDOW_COLUMNS:
 * what diff folds. A week of a busy exchange is thousands of rows; arrays cost less than objects.
 */
export function changeRowsIn(db: HistoryReader, after: string, upTo: string, filters: Filters): IterableIterator<WindowRow> {
  const { sql, params } = windowSql(filters);
  return (cachedStatement(db, sql).raw(true).iterate({ after, upTo }, ...params)) as IterableIterator<WindowRow>;
}

function* mapIterator<A, B>(source: IterableIterator<A>, map: (value: A) => B): IterableIterator<B> {
  for (const value of source) yield map(value);
}
