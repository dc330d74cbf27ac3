/**
 * The change feed: `tier_changes` rows in [since, until), oldest first, shaped for output with
 * `changed_columns` as an array and the old/new values grouped into `before` and `after`, then the
 * classification and the baseline flag.
 */
import { TRACKED_COLUMNS, type TierValues, type TrackedColumn } from '../history/tier.ts';
import type { ChangeHead } from '../store/change-records.ts';
import type { ChangeRecord } from '../store/history-store.ts';
import type { ChangeKind } from '../store/schema.ts';
import { CLASSIFICATIONS, type Classification } from '../alerts/classify.ts';
import { SQLITE, type SqlDialect } from './dialect.ts';
import { filterCondition, hasExactSymbolsOnly, type Filters } from './filters.ts';
import { cachedStatement, type HistoryReader } from './reader.ts';

/** A row of the `tier_changes` view as stored: the writer's record, with changed_columns as JSON text. */
export type ChangeViewRow = Omit<ChangeRecord, 'changed_columns'> & { changed_columns: string };

/** One change, as the output contract gives it. */
export interface ChangeRow extends ChangeHead {
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

export { CLASSIFICATIONS, type Classification };

/** One change of the feed as `changes` gives it: the change, its direction, and whether it is baseline. */
export interface FeedRow extends ChangeRow {
  classification: Classification;
  /** Part of the account's first successful sweep (every tier `added`): not news. */
  baseline: boolean;
}

/** What the feed keeps besides the window and the account/symbol filters. */
export interface FeedFilters {
  /** Keep the baseline rows (default: leave them out). */
  includeBaseline?: boolean;
  /** Only these classifications (empty or absent: all). */
  only?: readonly Classification[];
  /** Only these kinds of change (empty or absent: all). */
  change?: readonly ChangeKind[];
}

const CHANGE_COLUMNS =
  'run_id, observed_ms, account_id, symbol, leverage, change, changed_columns, old_initial_margin, new_initial_margin, ' +
  'old_maintenance_margin, new_maintenance_margin, old_max_notional, new_max_notional, classification, baseline';

export type FeedViewRow = Omit<ChangeViewRow, 'observed_at'> & {
  observed_ms: number;
  classification: Classification;
  baseline: number;
};

/** Epoch milliseconds of an instant given as a Date or ISO text (the feed and versions store ms). */
export function msOf(at: Date | string): number {
  return typeof at === 'string' ? Date.parse(at) : at.getTime();
}

/** A list condition `column IN (...)` over trusted literal values (the enums above), or always true. */
function oneOf(column: string, values: readonly string[] | undefined, dialect: SqlDialect): string {
  if (values === undefined || values.length === 0) return dialect.always;
  return `${column} IN (${[...new Set(values)].map((value) => `'${value}'`).join(', ')})`;
}

/**
 * The SQL of the change feed and its parameters (exported for the EXPLAIN test). It reads the
 * internal view tier_change_feed, whose times are epoch ms: a window walks the version indexes
 * (valid_from for additions and changes, valid_to for removals).
 */
export function changesSql(
  window: TimeWindow,
  filters: Filters,
  feed: FeedFilters = {},
  select: string = CHANGE_COLUMNS,
  dialect: SqlDialect = SQLITE,
): { sql: string; named: Record<string, number>; params: string[] } {
  const conditions: string[] = [];
  const named: Record<string, number> = {};
  if (window.since != null) {
    conditions.push('observed_ms >= @since');
    named.since = msOf(window.since);
  }
  if (window.until != null) {
    conditions.push('observed_ms < @until');
    named.until = msOf(window.until);
  }
  // With a time bound, the time indexes are the ones to walk, unless exact symbols are named
  // (then the symbol index is better still).
  const timeBound = window.since != null || window.until != null;
  const filter = filterCondition(filters, { indexable: !timeBound || hasExactSymbolsOnly(filters), dialect });
  conditions.push(filter.sql);
  if (feed.includeBaseline !== true) conditions.push('baseline = 0');
  conditions.push(oneOf('classification', feed.only, dialect), oneOf('change', feed.change, dialect));
  const sql =
    `SELECT ${select} FROM tier_change_feed WHERE ${conditions.join(' AND ')}` +
    (select === CHANGE_COLUMNS
      ? ` ORDER BY observed_ms, run_id${dialect.nullsFirst}, account_id, symbol, leverage_value`
      : '');
  return { sql, named, params: filter.params };
}

/** A row of tier_change_feed as the feed gives it (either backend). */
export function toFeedRow(row: FeedViewRow): FeedRow {
  const change = toChangeRow({ ...row, observed_at: new Date(row.observed_ms).toISOString() });
  return { ...change, classification: row.classification, baseline: row.baseline === 1 };
}

/**
 * The changes observed in [since, until), oldest first (then by run, account, symbol and numeric
 * leverage), as a lazy iterator: the caller can stream a year of changes without holding them.
 * The baseline is left out unless `feed.includeBaseline`. The connection is busy until the iterator
 * is finished or returned.
 */
export function changesBetween(
  db: HistoryReader,
  window: TimeWindow = {},
  filters: Filters = {},
  feed: FeedFilters = {},
): IterableIterator<FeedRow> {
  const { sql, named, params } = changesSql(window, filters, feed);
  return mapIterator(cachedStatement<FeedViewRow>(db, sql).iterate(named, ...params), toFeedRow);
}

/** The SQL counting the baseline rows a question left out (see baselineRowsBetween). */
export function baselineCountSql(
  window: TimeWindow,
  filters: Filters,
  feed: FeedFilters,
  dialect: SqlDialect = SQLITE,
): { sql: string; named: Record<string, number>; params: string[] } {
  const question = changesSql(window, filters, { ...feed, includeBaseline: true }, 'count(*) AS n', dialect);
  return { ...question, sql: `${question.sql} AND baseline = 1` };
}

/** How many baseline rows the same question would have given with --include-baseline. */
export function baselineRowsBetween(
  db: HistoryReader,
  window: TimeWindow = {},
  filters: Filters = {},
  feed: FeedFilters = {},
): number {
  const { sql, named, params } = baselineCountSql(window, filters, feed);
  return cachedStatement(db, sql)
    .pluck()
    .get(named, ...params) as number;
}

function* mapIterator<A, B>(source: IterableIterator<A>, map: (value: A) => B): IterableIterator<B> {
  for (const value of source) yield map(value);
}
