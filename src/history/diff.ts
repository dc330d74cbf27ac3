/**
 * The diff of one account's current tiers against a complete sweep: pure, no I/O, no clock.
 * The store feeds it the current versions it keeps in memory and writes what it returns.
 */
import { TierwatchError } from '../errors.ts';
import { changedColumns, tierKey, type Tier, type TierValues, type TrackedColumn } from './tier.ts';

/** A tier's open version as the store knows it. */
export interface CurrentVersion extends TierValues {
  /** The tier_version row (its primary key), so the store can close it without a lookup. */
  version_id: number;
  symbol: string;
  leverage: string;
  exchange_id: string | null;
}

export interface TierUpdate {
  key: string;
  before: CurrentVersion;
  after: Tier;
  /** Never empty: an update is only reported when a tracked column changed. */
  columns: TrackedColumn[];
}

export interface TierDiff {
  /** In the sweep, not among the current versions (first sighting or re-listing). */
  added: Array<{ key: string; tier: Tier }>;
  /** Current, not in the sweep. */
  removed: Array<{ key: string; version: CurrentVersion }>;
  /** In both, with at least one tracked column different. */
  changed: TierUpdate[];
  /** In both with the same tracked values (a different exchange_id alone counts as unchanged). */
  unchanged: number;
}

/**
 * Compares a complete sweep with the current versions. `current` is keyed by tierKey(symbol,
 * leverage). Values are compared exactly (Object.is), so the same float read twice is never a change.
 * Order: added and changed follow the sweep's order, removed follows `current`'s order.
 * Throws INTERNAL if the sweep holds the same key twice: the pager must have rejected that.
 */
export function diffTiers(current: ReadonlyMap<string, CurrentVersion>, incoming: readonly Tier[]): TierDiff {
  const added: TierDiff['added'] = [];
  const changed: TierUpdate[] = [];
  const seen = new Set<string>();
  let unchanged = 0;

  for (const tier of incoming) {
    const key = tierKey(tier.symbol, tier.leverage);
    if (seen.has(key)) {
      throw new TierwatchError(
        'INTERNAL',
        `the sweep holds ${tier.symbol} at leverage ${tier.leverage} twice; a sweep must list each tier once`,
      );
    }
    seen.add(key);
    const before = current.get(key);
    if (before === undefined) {
      added.push({ key, tier });
      continue;
    }
    const columns = changedColumns(before, tier);
    if (columns.length === 0) unchanged += 1;
    else changed.push({ key, before, after: tier, columns });
  }

  const removed: TierDiff['removed'] = [];
  // Every current key matched means nothing was removed: skip the second pass in the steady state.
  if (seen.size - added.length !== current.size) {
    for (const [key, version] of current) {
      if (!seen.has(key)) removed.push({ key, version });
    }
  }
  return { added, removed, changed, unchanged };
}
