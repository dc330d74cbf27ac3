/**
 * The benchmarks' tier lists: the simulator's synthetic universe (seed 7) as validated tiers, as the
 * pager would hand them to a store.
 */
import type { Tier } from '../src/history/tier.ts';
import { syntheticUniverse } from '../src/sim/index.ts';

export function syntheticTiers(count: number): Tier[] {
  return syntheticUniverse(count, 7).map((tier) => ({
    symbol: tier.symbol,
    leverage: tier.leverage,
    exchange_id: tier.id,
    initial_margin: tier.initial_margin,
    maintenance_margin: tier.maintenance_margin,
    max_notional: tier.max_notional,
  }));
}
