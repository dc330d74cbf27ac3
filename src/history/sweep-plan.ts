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
import type { Tier } from './tier.ts';
import { changeRecords, type ChangeRecord } from '../store/change-records.ts';

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
  changes: ChangeRecord[];
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
