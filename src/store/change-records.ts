/**
 * The change records of a sweep: what it stored, one row per tier that was removed, changed or
 * added, built from the sweep's diff exactly as the `tier_changes` view derives them from the
 * versions (a test holds the two equal). The versions are the only record; these are what a sweep
 * returns and hands to its hook (the alert outbox), so no one has to read the view back.
 */
import type { TierDiff } from '../history/diff.ts';
import type { TrackedColumn } from '../history/tier.ts';
import type { ChangeKind } from './schema.ts';

/**
 * What every shape of a change says before its values: which run saw it and when, which tier, and
 * what happened to it. The stored record and the output contract (query/changes.ts) both start so.
 */
export interface ChangeHead {
  run_id: number;
  observed_at: string;
  account_id: string;
  symbol: string;
  leverage: string;
  change: ChangeKind;
  changed_columns: TrackedColumn[];
}

/**
 * A row of the `tier_changes` view's first thirteen columns, with changed_columns parsed into an
 * array (classification is derived from it by src/alerts/classify.ts; baseline is the sweep's).
 */
export interface ChangeRecord extends ChangeHead {
  old_initial_margin: number | null;
  new_initial_margin: number | null;
  old_maintenance_margin: number | null;
  new_maintenance_margin: number | null;
  old_max_notional: number | null;
  new_max_notional: number | null;
}

/**
 * The records of `diff` in the order the sweep stores them: removed, then changed, then added.
 * Pure; `base` is what every record of the sweep shares.
 */
export function changeRecords(
  base: Pick<ChangeRecord, 'run_id' | 'observed_at' | 'account_id'>,
  diff: TierDiff,
): ChangeRecord[] {
  const changes: ChangeRecord[] = [];
  for (const version of diff.removed) {
    changes.push({
      ...base,
      symbol: version.symbol,
      leverage: version.leverage,
      change: 'removed',
      changed_columns: [],
      old_initial_margin: version.initial_margin,
      new_initial_margin: null,
      old_maintenance_margin: version.maintenance_margin,
      new_maintenance_margin: null,
      old_max_notional: version.max_notional,
      new_max_notional: null,
    });
  }
  for (const { before, after, columns } of diff.changed) {
    changes.push({
      ...base,
      symbol: after.symbol,
      leverage: after.leverage,
      change: 'changed',
      changed_columns: columns,
      old_initial_margin: before.initial_margin,
      new_initial_margin: after.initial_margin,
      old_maintenance_margin: before.maintenance_margin,
      new_maintenance_margin: after.maintenance_margin,
      old_max_notional: before.max_notional,
      new_max_notional: after.max_notional,
    });
  }
  for (const tier of diff.added) {
    changes.push({
      ...base,
      symbol: tier.symbol,
      leverage: tier.leverage,
      change: 'added',
      changed_columns: [],
      old_initial_margin: null,
      new_initial_margin: tier.initial_margin,
      old_maintenance_margin: null,
      new_maintenance_margin: tier.maintenance_margin,
      old_max_notional: null,
      new_max_notional: tier.max_notional,
    });
  }
  return changes;
}
