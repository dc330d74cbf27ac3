/**
 * The tier as tierwatch knows it, after validation. Field names are snake_case on purpose: they are
 * the names of the SQL view columns and of the JSON output contract, so no layer renames them.
 */

/** The primary account is stored as this literal, never as NULL. */
export const PRIMARY_ACCOUNT = 'primary';

/** The columns whose change is a tier change. The exchange's row id is not one of them. */
export const TRACKED_COLUMNS = ['initial_margin', 'maintenance_margin', 'max_notional'] as const;
export type TrackedColumn = (typeof TRACKED_COLUMNS)[number];

export type TierValues = Record<TrackedColumn, number>;

export interface Tier extends TierValues {
  symbol: string;
  /** Normalised decimal string: "20.0" and 20 both become "20". */
  leverage: string;
  /** The exchange's row id, kept for reference; not part of the identity. */
  exchange_id: string | null;
}

/**
 * Canonical form of a positive decimal leverage: no sign, no exponent, no leading zeros in the
 * integer part, no trailing zeros in the fraction ("020.50" → "20.5", "20.0" → "20").
 * Returns null for anything that is not a positive decimal.
 */
export function normalizeLeverage(raw: unknown): string | null {
  let text: string;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw) || raw <= 0) return null;
    text = String(raw);
    if (/e/i.test(text)) return null; // 1e21 and 1e-7 are not leverages an exchange offers
  } else if (typeof raw === 'string') {
    text = raw.trim();
  } else {
    return null;
  }
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return null;
  const integer = match[1]!.replace(/^0+(?=\d)/, '');
  const fraction = (match[2] ?? '').replace(/0+$/, '');
  const canonical = fraction ? `${integer}.${fraction}` : integer;
  return /^0(\.0*)?$/.test(canonical) ? null : canonical;
}

/** Identity of a tier within one account. The separator cannot occur in a normalised leverage. */
export function tierKey(symbol: string, leverage: string): string {
  return `${symbol}\u0000${leverage}`;
}

/** Which tracked columns differ. Exact comparison: the same float read twice is the same value. */
export function changedColumns(before: TierValues, after: TierValues): TrackedColumn[] {
  return TRACKED_COLUMNS.filter((column) => !Object.is(before[column], after[column]));
}
