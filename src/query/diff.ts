/**
 * What differs between the states at two points, net of everything in between.
 *
 * Read from the versions, not from the change feed: a tier differs only if a version of it began
 * or ended in (from, to]. The versions valid at TO that began after FROM are the "after" sides;
 * the versions valid at FROM that ended by TO are the "before" sides. A tier with both compares its
 * two ends (A → B → A is no difference); with only an after side it was added, with only a before
 * side removed; added-then-removed has neither. So the whole year's diff reads about two ladders'
 * worth of rows per tier, not a year of changes.
 */
import { changedColumns, tierKey, type TierValues } from '../history/tier.ts';
import { requireHistoryAt, type HistoryBounds } from './bounds.ts';
import { type ChangeRow } from './changes.ts';
import { SQLITE, type SqlDialect } from './dialect.ts';
import { filterCondition, hasExactSymbolsOnly, type Filters } from './filters.ts';
import { cachedStatement, isoOf, type HistoryReader } from './reader.ts';
import { TierwatchError } from '../errors.ts';

/** One difference, as the output contract gives it: a change row without its run and time. */
export type DiffRow = Omit<ChangeRow, 'run_id' | 'observed_at'>;

interface Ends {
  account_id: string;
  symbol: string;
  leverage: string;
  before: TierValues | null;
  after: TierValues | null;
}

const SIDE_COLUMNS = 'account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional';
/** One side's row as read in raw (array) mode: SIDE_COLUMNS in order. */
export type SideRow = [string, string, string, number, number, number];

/** Which index each side walks: the time bound that leaves fewer versions to look at. */
export type DiffRoute = 'symbol' | 'from' | 'to';

/**
 * The SQL of both sides of a diff (exported for the EXPLAIN test); parameters @from and @to (epoch
 * ms), then the filter's. `route.after`/`route.before` pick the index as snapshotSql does: a `+`
 * keeps SQLite off the other one. On Postgres both routes are 'symbol', the form without hints.
 */
export function diffSql(
  filters: Filters,
  route: { after: DiffRoute; before: DiffRoute },
  dialect: SqlDialect = SQLITE,
): { after: string; before: string; params: string[] } {
  const symbol = hasExactSymbolsOnly(filters);
  const filter = filterCondition(filters, { indexable: symbol, dialect });
  // Valid at TO, began in (FROM, TO].
  const after =
    route.after === 'to'
      ? '+valid_from > @from AND +valid_from <= @to AND (valid_to IS NULL OR valid_to > @to)'
      : route.after === 'from'
        ? 'valid_from > @from AND valid_from <= @to AND (+valid_to IS NULL OR +valid_to > @to)'
        : 'valid_from > @from AND valid_from <= @to AND (valid_to IS NULL OR valid_to > @to)';
  // Valid at FROM, ended in (FROM, TO].
  const before =
    route.before === 'to'
      ? '+valid_from <= @from AND valid_to > @from AND valid_to <= @to'
      : route.before === 'from'
        ? 'valid_from <= @from AND +valid_to > @from AND +valid_to <= @to'
        : 'valid_from <= @from AND valid_to > @from AND valid_to <= @to';
  return {
    after: `SELECT ${SIDE_COLUMNS} FROM tier_version WHERE ${after} AND ${filter.sql}`,
    before: `SELECT ${SIDE_COLUMNS} FROM tier_version WHERE ${before} AND ${filter.sql}`,
    params: filter.params,
  };
}

/**
 * The cheaper index per side, from where FROM and TO fall in the history (versions are spread
 * about evenly in time): "after" walks valid_from over (FROM, TO] or valid_to beyond TO; "before"
 * walks valid_from up to FROM or valid_to over (FROM, TO].
 */
export function diffRoute(
  from: string,
  to: string,
  bounds: HistoryBounds,
  filters: Filters,
): { after: DiffRoute; before: DiffRoute } {
  if (hasExactSymbolsOnly(filters)) return { after: 'symbol', before: 'symbol' };
  const first = Date.parse(bounds.first_observed_at);
  const last = Date.parse(bounds.last_observed_at);
  const span = last > first ? last - first : 1;
  const position = (at: string) => Math.min(1, Math.max(0, (Date.parse(at) - first) / span));
  const p1 = position(from);
  const p2 = position(to);
  return {
    after: p2 - p1 <= 1 - p2 ? 'from' : 'to',
    before: p1 <= p2 - p1 ? 'from' : 'to',
  };
}

/**
 * The differences between the snapshot at `from` and the snapshot at `to`, ordered by account,
 * symbol and numeric leverage. Throws TierwatchError('DB_EMPTY') when the history is empty or
 * begins after `from` (the state at FROM is unknown), USAGE when `from` is after `to`.
 */
export function diffBetween(
  db: HistoryReader,
  from: Date | string,
  to: Date | string,
  filters: Filters = {},
): DiffRow[] {
  const { fromIso, toIso } = diffInstants(from, to);
  const bounds = requireHistoryAt(db, fromIso);
  const sql = diffSql(filters, diffRoute(fromIso, toIso, bounds, filters));
  const named = { from: Date.parse(fromIso), to: Date.parse(toIso) };
  // A generator, so each statement starts only when its side is read: one at a time.
  function* read(text: string): Generator<SideRow> {
    yield* cachedStatement(db, text)
      .raw(true)
      .iterate(named, ...sql.params) as IterableIterator<SideRow>;
  }
  return diffOfSides(read(sql.before), read(sql.after));
}

/** FROM and TO as ISO instants; USAGE when FROM is after TO (checked before the history is read). */
export function diffInstants(from: Date | string, to: Date | string): { fromIso: string; toIso: string } {
  const fromIso = isoOf(from);
  const toIso = isoOf(to);
  if (fromIso > toIso) {
    throw new TierwatchError('USAGE', `FROM (${fromIso}) is after TO (${toIso}): give the earlier point first.`);
  }
  return { fromIso, toIso };
}

/**
 * The differences from the two sides read (either backend): each tier's "before" end (valid at
 * FROM, ended by TO) and "after" end (valid at TO, began after FROM), compared, in tier order.
 */
export function diffOfSides(beforeRows: Iterable<SideRow>, afterRows: Iterable<SideRow>): DiffRow[] {
  const ends = new Map<string, Ends>();
  for (const [account_id, symbol, leverage, im, mm, max] of beforeRows) {
    ends.set(`${account_id}\u0000${tierKey(symbol, leverage)}`, {
      account_id,
      symbol,
      leverage,
      before: { initial_margin: im, maintenance_margin: mm, max_notional: max },
      after: null,
    });
  }
  for (const [account_id, symbol, leverage, im, mm, max] of afterRows) {
    const key = `${account_id}\u0000${tierKey(symbol, leverage)}`;
    const after = { initial_margin: im, maintenance_margin: mm, max_notional: max };
    const seen = ends.get(key);
    if (seen === undefined) ends.set(key, { account_id, symbol, leverage, before: null, after });
    else seen.after = after;
  }

  const rows: DiffRow[] = [];
  for (const end of ends.values()) {
    const { before, after } = end;
    const base = { account_id: end.account_id, symbol: end.symbol, leverage: end.leverage };
    if (before === null) {
      rows.push({ ...base, change: 'added', changed_columns: [], before, after });
    } else if (after === null) {
      rows.push({ ...base, change: 'removed', changed_columns: [], before, after });
    } else {
      const columns = changedColumns(before, after);
      if (columns.length > 0) rows.push({ ...base, change: 'changed', changed_columns: columns, before, after });
    }
  }
  return rows.sort(compareTiers);
}

/** Account, symbol, then leverage as a number: the order of every tier listing. */
export function compareTiers(
  a: { account_id: string; symbol: string; leverage: string },
  b: { account_id: string; symbol: string; leverage: string },
): number {
  return (
    compareText(a.account_id, b.account_id) ||
    compareText(a.symbol, b.symbol) ||
    Number(a.leverage) - Number(b.leverage)
  );
}

/** Byte order, as SQLite's BINARY collation sorts, so JS and SQL orders agree. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
