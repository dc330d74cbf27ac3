/**
 * Point in time: every tier version valid at T, i.e. valid_from <= T < valid_to (NULL = still open).
 *
 * Reads tier_version itself (times as epoch ms, so the indexes serve the bounds) and gives rows
 * in the shape of the `tier_versions` view (ISO text times, leverage_value).
 *
 * Speed. Each version satisfies valid_from <= T or valid_to > T (or both: the answer), so an index
 * on either column alone must walk every version on its side of T. Which side is shorter depends
 * on where T falls in the history, so the query is written in two shapes and chosen by T's position
 * between the first and the last sweep (with a steady change rate, versions are spread evenly in
 * time). A unary `+` keeps SQLite from using the index of the other side. Exact symbols go through
 * the symbol index instead (a symbol has a few hundred versions), which is best whatever T is.
 */
import type { TierValues } from '../history/tier.ts';
import { requireHistoryAt, type HistoryBounds } from './bounds.ts';
import { SQLITE, type SqlDialect } from './dialect.ts';
import { filterCondition, hasExactSymbolsOnly, type Filters } from './filters.ts';
import { cachedStatement, isoOf, type HistoryReader } from './reader.ts';

/** A row of the `tier_versions` view: one state of a tier and the interval it was valid. */
export interface VersionRow extends TierValues {
  account_id: string;
  symbol: string;
  leverage: string;
  exchange_id: string | null;
  valid_from: string;
  valid_to: string | null;
  run_id: number;
  /** leverage as a number, for sorting ("5" before "20"). */
  leverage_value: number;
}

export const VERSION_COLUMNS = [
  'account_id',
  'symbol',
  'leverage',
  'initial_margin',
  'maintenance_margin',
  'max_notional',
  'exchange_id',
  'valid_from',
  'valid_to',
  'run_id',
  'leverage_value',
] as const;

/** tier_version's columns in the view's order; times still epoch ms (converted by toVersionRow). */
export function selectVersion(dialect: SqlDialect): string {
  return (
    'SELECT account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id, valid_from, valid_to, ' +
    `run_id, CAST(leverage AS ${dialect.double}) AS leverage_value FROM tier_version`
  );
}

export const SELECT_VERSION = selectVersion(SQLITE);

export type StoredVersion = Omit<VersionRow, 'valid_from' | 'valid_to'> & {
  valid_from: number;
  valid_to: number | null;
};

/** A stored version in the view's shape: epoch ms to the ISO text the view shows. */
export function toVersionRow(row: StoredVersion): VersionRow {
  return {
    ...row,
    valid_from: new Date(row.valid_from).toISOString(),
    valid_to: row.valid_to === null ? null : new Date(row.valid_to).toISOString(),
  };
}

/**
 * Account, symbol, then leverage as a number ("5" before "20"). The `+` keeps SQLite from walking
 * the symbol index just to avoid a sort (it would, given an account equality), which would read
 * every version instead of the ones near T.
 */
function snapshotOrder(dialect: SqlDialect): string {
  return `ORDER BY account_id, ${dialect.unindexed('symbol')}, leverage_value`;
}

export type SnapshotRoute = 'symbol' | 'from' | 'to';

/** Which index the snapshot at `at` walks (exported for the EXPLAIN test and the benchmark). */
export function snapshotRoute(at: string, bounds: HistoryBounds, filters: Filters): SnapshotRoute {
  if (hasExactSymbolsOnly(filters)) return 'symbol';
  const first = Date.parse(bounds.first_observed_at);
  const last = Date.parse(bounds.last_observed_at);
  const position = last > first ? (Date.parse(at) - first) / (last - first) : 1;
  return position < 0.5 ? 'from' : 'to';
}

/**
 * The SQL of the snapshot for a route; parameters: @at (epoch ms), then the filter's positional ones.
 * On Postgres the route is always 'symbol', the form without planner hints.
 */
export function snapshotSql(
  route: SnapshotRoute,
  filters: Filters,
  dialect: SqlDialect = SQLITE,
): { sql: string; params: string[] } {
  // Only the symbol route may use the symbol index; the others must stay on their time index.
  const filter = filterCondition(filters, { indexable: route === 'symbol', dialect });
  const interval =
    route === 'to'
      ? '+valid_from <= @at AND (valid_to IS NULL OR valid_to > @at)'
      : route === 'from'
        ? 'valid_from <= @at AND (+valid_to IS NULL OR +valid_to > @at)'
        : 'valid_from <= @at AND (valid_to IS NULL OR valid_to > @at)';
  return {
    sql: `${selectVersion(dialect)} WHERE ${interval} AND ${filter.sql} ${snapshotOrder(dialect)}`,
    params: filter.params,
  };
}

/**
 * Every tier as it was at `at`, ordered by account, symbol and numeric leverage. Throws
 * TierwatchError('DB_EMPTY') when the history is empty or begins after `at`. A filter that matches
 * nothing gives an empty list. `at` after the last sweep gives the current state.
 */
export function snapshotAt(db: HistoryReader, at: Date | string, filters: Filters = {}): VersionRow[] {
  const iso = isoOf(at);
  const bounds = requireHistoryAt(db, iso);
  const { sql, params } = snapshotSql(snapshotRoute(iso, bounds, filters), filters);
  return cachedStatement<StoredVersion>(db, sql)
    .all({ at: Date.parse(iso) }, ...params)
    .map(toVersionRow);
}
