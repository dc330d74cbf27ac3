/**
 * One change as a person reads it: "META-USD 20x changed: max_notional 190,000 → 150,000 (−21.1%)".
 * Used by the demo's live feed, the `changes` table and chat alerts, so they all read the same.
 */
import { TRACKED_COLUMNS, type TrackedColumn } from '../history/tier.ts';
import type { ChangeRecord } from '../store/history-store.ts';

/**
 * The fields of a `tier_changes` row this needs (snake_case, as in the view). changed_columns may be
 * the stored JSON text or the parsed array, so both the view's rows and the writer's records fit.
 */
export type DescribableChange = Omit<ChangeRecord, 'run_id' | 'observed_at' | 'account_id' | 'changed_columns'> & {
  changed_columns: readonly string[] | string;
};

const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 6 });
const marginFormat = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 6 });

export function formatValue(column: TrackedColumn, value: number | null): string {
  if (value === null) return '–';
  return column === 'max_notional' ? numberFormat.format(value) : marginFormat.format(value);
}

/** "−21.1%" with a real minus sign, "+5.0%", or "" when the old value is zero or missing. */
export function relativeMove(before: number | null, after: number | null): string {
  if (before === null || after === null || before === 0) return '';
  const percent = ((after - before) / Math.abs(before)) * 100;
  const sign = percent > 0 ? '+' : percent < 0 ? '−' : '±';
  return `${sign}${Math.abs(percent).toFixed(1)}%`;
}

export function columnsOf(change: DescribableChange): TrackedColumn[] {
  const columns =
    typeof change.changed_columns === 'string'
      ? (JSON.parse(change.changed_columns) as string[])
      : change.changed_columns;
  return TRACKED_COLUMNS.filter((column) => columns.includes(column));
}

function valuesOf(change: DescribableChange, side: 'old' | 'new'): string {
  return TRACKED_COLUMNS.map((column) => `${column} ${formatValue(column, change[`${side}_${column}`])}`).join(', ');
}

/** Each changed column as "old → new (move)". */
export function describeMoves(change: DescribableChange): string[] {
  return columnsOf(change).map((column) => {
    const before = change[`old_${column}`];
    const after = change[`new_${column}`];
    const move = relativeMove(before, after);
    return `${column} ${formatValue(column, before)} → ${formatValue(column, after)}${move ? ` (${move})` : ''}`;
  });
}

/**
 * What happened to the tier, without naming it: "max_notional 190,000 → 150,000 (−21.1%)" for a
 * change, the values for an addition, "was …" for a removal. The query tables print this beside
 * their own symbol and leverage columns.
 */
export function describeDetail(change: DescribableChange): string {
  switch (change.change) {
    case 'added':
      return valuesOf(change, 'new');
    case 'removed':
      return `was ${valuesOf(change, 'old')}`;
    case 'changed':
      return describeMoves(change).join('; ');
  }
}

export function describeChange(change: DescribableChange): string {
  const tier = `${change.symbol} ${change.leverage}x`;
  switch (change.change) {
    case 'added':
      return `${tier} added: ${describeDetail(change)}`;
    case 'removed':
      return `${tier} removed (${describeDetail(change)})`;
    case 'changed':
      return `${tier} changed: ${describeDetail(change)}`;
  }
}
