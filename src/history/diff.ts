/**
 * The diff of one account's current tiers against a complete sweep: pure, no I/O, no clock.
 * The store feeds it the current versions it keeps in memory and writes what it returns.
 */
import { TierwatchError } from '../errors.ts';
import { changedColumns, type Tier, type TrackedColumn } from './tier.ts';
import type { CurrentTiers, CurrentVersion } from './current-tiers.ts';

export type { CurrentVersion } from './current-tiers.ts';

export interface TierUpdate {
  before: CurrentVersion;
  after: Tier;
  /** Never empty: an update is only reported when a tracked column changed. */
  columns: TrackedColumn[];
}

export interface TierDiff {
  /** In the sweep, not among the current versions (first sighting or re-listing). */
  added: Tier[];
  /** Current, not in the sweep: the versions to close. */
  removed: CurrentVersion[];
  /** In both, with at least one tracked column different. */
  changed: TierUpdate[];
  /** In both with the same tracked values (a different exchange_id alone counts as unchanged). */
  unchanged: number;
}

/**
 * Compares a complete sweep with the current versions. Values are compared exactly, so the same
 * float read twice is never a change. Order: added and changed follow the sweep, removed follows
 * `current`. Throws INTERNAL if the sweep holds the same (symbol, leverage) twice: the pager must
 * have rejected that, and letting it through could hide a removal.
 */
export function diffTiers(current: CurrentTiers, incoming: readonly Tier[]): TierDiff {
  const added: Tier[] = [];
  const changed: TierUpdate[] = [];
  const matched = new Set<CurrentVersion>();
  let addedKeys: Set<string> | undefined;
  let unchanged = 0;

  for (const tier of incoming) {
    const before = current.get(tier.symbol, tier.leverage);
    if (before === undefined) {
      addedKeys ??= new Set();
      const key = `${tier.symbol}\u0000${tier.leverage}`;
      if (addedKeys.has(key)) throw duplicate(tier);
      addedKeys.add(key);
      added.push(tier);
      continue;
    }
    if (matched.has(before)) throw duplicate(tier);
    matched.add(before);
    // Fast path for the common case; changedColumns decides every other one (NaN included; ±0
    // cannot occur, margins and notionals are validated positive).
    if (
      before.initial_margin === tier.initial_margin &&
      before.maintenance_margin === tier.maintenance_margin &&
      before.max_notional === tier.max_notional
    ) {
      unchanged += 1;
      continue;
    }
    const columns = changedColumns(before, tier);
    if (columns.length === 0) unchanged += 1;
    else changed.push({ before, after: tier, columns });
  }

  const removed: CurrentVersion[] = [];
  // Every current version matched means nothing was removed: skip the second pass in the steady state.
  if (matched.size !== current.size) {
    for (const version of current.values()) {
      if (!matched.has(version)) removed.push(version);
    }
  }
  return { added, removed, changed, unchanged };
}

function duplicate(tier: Tier): TierwatchError {
  return new TierwatchError(
    'INTERNAL',
    `the sweep holds ${tier.symbol} at leverage ${tier.leverage} twice; a sweep must list each tier once`,
  );
}
