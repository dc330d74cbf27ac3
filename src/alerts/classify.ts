/**
 * Which way a tier change moves risk for a position holder. Pure.
 *
 * Tightening: a margin goes up, the max notional goes down, or the tier is removed — a position
 * sitting in that tier is closer to liquidation or no longer fits. Loosening: the reverse, or a tier
 * added. Mixed: a change that tightens one column and loosens another.
 */
import type { TrackedColumn } from '../history/tier.ts';
import type { ChangeRow } from '../query/changes.ts';

export const CLASSIFICATIONS = ['tightening', 'loosening', 'mixed'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

/** +1 when a higher value of the column is stricter, -1 when a lower one is. */
const STRICTER_WHEN: Record<TrackedColumn, 1 | -1> = {
  initial_margin: 1,
  maintenance_margin: 1,
  max_notional: -1,
};

/** Classifies one change (in the `tierwatch changes --format json` shape). */
export function classifyChange(
  change: Pick<ChangeRow, 'change' | 'changed_columns' | 'before' | 'after'>,
): Classification {
  if (change.change === 'removed') return 'tightening';
  if (change.change === 'added') return 'loosening';
  const { before, after } = change;
  if (before === null || after === null) return 'mixed';
  let tighter = false;
  let looser = false;
  for (const column of change.changed_columns) {
    const direction = Math.sign(after[column] - before[column]) * STRICTER_WHEN[column];
    if (direction > 0) tighter = true;
    else if (direction < 0) looser = true;
  }
  if (tighter && !looser) return 'tightening';
  if (looser && !tighter) return 'loosening';
  return 'mixed';
}
