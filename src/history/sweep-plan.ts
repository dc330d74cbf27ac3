/**
 * What a sweep writes, decided without I/O: from the account's current versions and a diff, the
 * versions to close, the versions to open (each with the version it replaces), and the change
 * records, exactly as the `tier_changes` view will derive them from the versions. A backend only
 * applies the plan, so SQLite and Postgres store the same history for the same sweep.
 *
 * The order is the SQLite store's: removals, then changes, then additions; versions open in the
 * order changed-then-added, so both backends number them alike.
 */
import type { CurrentVersion, TierDiff } from './diff.ts';
import type { Tier, TrackedColumn } from './tier.ts';

/** A change as the `tier_changes` view's first thirteen columns show it (changed_columns parsed). */
export interface PlannedChange {
  run_id: number;
  observed_at: string;
  account_id: string;
  symbol: string;
  leverage: string;
  change: 'added' | 'removed' | 'changed';
  changed_columns: TrackedColumn[];
  old_initial_margin: number | null;
  new_initial_margin: number | null;
  old_maintenance_margin: number | null;
  new_maintenance_margin: number | null;
  old_max_notional: number | null;
  new_max_notional: number | null;
}

export interface VersionToOpen {
  tier: Tier;
  /** The version this one replaces (closed at the same instant); null when the tier is listed. */
  previous: CurrentVersion | null;
}

export interface SweepPlan {
  /** The open versions to close at the sweep's observed instant, in order. */
  close: CurrentVersion[];
  /** The versions to open at the sweep's observed instant, in order. */
  open: VersionToOpen[];
  /** Every change stored, in order: removed, then changed, then added. */
  changes: PlannedChange[];
}

/** Plans the writes of a sweep whose diff passed the guards. Pure. */
export function planSweep(input: { runId: number; accountId: string; observedAt: string; diff: TierDiff }): SweepPlan {
  const { diff } = input;
  const close: CurrentVersion[] = [...diff.removed];
  const open: VersionToOpen[] = [];
  for (const { before, after } of diff.changed) {
    close.push(before);
    open.push({ tier: after, previous: before });
  }
  for (const tier of diff.added) open.push({ tier, previous: null });
  return {
    close,
    open,
    changes: changeRecords({ run_id: input.runId, observed_at: input.observedAt, account_id: input.accountId }, diff),
  };
}

/** The change records of `diff`, in the order stored: removed, then changed, then added. Pure. */
export function changeRecords(
  base: Pick<PlannedChange, 'run_id' | 'observed_at' | 'account_id'>,
  diff: TierDiff,
): PlannedChange[] {
  const changes: PlannedChange[] = [];
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
