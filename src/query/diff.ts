/**
 * What differs between the states at two points, net of everything in between.
 *
 * Computed from the changes in (from, to] alone: for a tier touched in that window, its first
 * change's old side is its state at FROM (nothing changed it between FROM and that change) and its
 * last change's new side is its state at TO. Tiers not touched are the same at both points. So a
 * week's diff reads a week of changes instead of two whole-exchange snapshots, and A → B → A or
 * added-then-removed come out as "no difference" because only the two ends are compared.
 */
import { changedColumns, tierKey, type TierValues } from '../history/tier.ts';
import { requireHistoryAt } from './bounds.ts';
import { changeRowsIn, type ChangeRow } from './changes.ts';
import type { Filters } from './filters.ts';
import { isoOf, type HistoryReader } from './reader.ts';
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

/**
 * The differences between the snapshot at `from` and the snapshot at `to`, ordered by account,
 * symbol and numeric leverage. Throws TierwatchError('DB_EMPTY') when the history is empty or
 * begins after `from` (the state at FROM is unknown), USAGE when `from` is after `to`.
 */
export function diffBetween(db: HistoryReader, from: Date | string, to: Date | string, filters: Filters = {}): DiffRow[] {
  const fromIso = isoOf(from);
  const toIso = isoOf(to);
  if (fromIso > toIso) {
    throw new TierwatchError('USAGE', `FROM (${fromIso}) is after TO (${toIso}): give the earlier point first.`);
  }
  requireHistoryAt(db, fromIso);

  const ends = new Map<string, Ends>();
  for (const [account_id, symbol, leverage, oldIm, oldMm, oldMax, newIm, newMm, newMax] of changeRowsIn(db, fromIso, toIso, filters)) {
    const key = `${account_id}\u0000${tierKey(symbol, leverage)}`;
    const after = valuesOf(newIm, newMm, newMax);
    const seen = ends.get(key);
    if (seen === undefined) {
      ends.set(key, { account_id, symbol, leverage, before: valuesOf(oldIm, oldMm, oldMax), after });
    } else {
      seen.after = after;
    }
  }

  const rows: DiffRow[] = [];
  for (const end of ends.values()) {
    const { before, after } = end;
    if (before === null && after === null) continue; // added, then removed again
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

/** One side of a change: null when it has none (before an addition, after a removal). */
function valuesOf(initial: number | null, maintenance: number | null, maxNotional: number | null): TierValues | null {
  if (initial === null || maintenance === null || maxNotional === null) return null;
  return { initial_margin: initial, maintenance_margin: maintenance, max_notional: maxNotional };
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
