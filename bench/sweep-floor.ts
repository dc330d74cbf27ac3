/**
 * The sweep benchmark's floor (sweep-worker.ts): the least work any collector must do for a sweep
 * of the same pages, measured in the same run so that the ratio to it means something on any
 * machine. That is JSON.parse of every page plus one keyed comparison against the previous state
 * (nested Maps, the cheapest keyed lookup we know).
 */
import type { SimTier } from '../src/sim/index.ts';
import { listFrame, wireRow } from '../src/sim/frames.ts';

/** The pages the pager asks for (limit `pageSize`, offsets overlapping by one row), as the simulator serialises them. */
export function pagesLikeTheSimulator(universe: readonly SimTier[], pageSize: number): string[] {
  const pages: string[] = [];
  let held = 0;
  for (;;) {
    const offset = held === 0 ? 0 : held - 1;
    const rows = universe.slice(offset, offset + pageSize);
    pages.push(
      listFrame(
        'available_leverage_levels_response',
        rows.map((tier) => wireRow(tier, {})),
      ),
    );
    const fresh = rows.length - (held === 0 ? 0 : 1);
    if (fresh <= 0) return pages;
    held += fresh;
  }
}

export type Values = { initial_margin: number; maintenance_margin: number; max_notional: number };

/**
 * The floor: decode and parse every page as it arrives (bytes) and compare each row with the
 * previous state by key. Returns the changed count. With `fromText` the pages are parsed from
 * ready-made strings instead, leaving out the UTF-8 decoding (reported beside it).
 */
export function floorPass(
  pages: readonly Buffer[] | readonly string[],
  previous: Map<string, Map<string, Values>>,
): number {
  let changed = 0;
  for (const page of pages) {
    const text = typeof page === 'string' ? page : page.toString('utf8');
    const rows = (
      JSON.parse(text) as { available_leverage_levels_response: Array<Values & { symbol: string; leverage: string }> }
    ).available_leverage_levels_response;
    for (const row of rows) {
      const before = previous.get(row.symbol)?.get(row.leverage);
      if (
        before === undefined ||
        before.initial_margin !== row.initial_margin ||
        before.maintenance_margin !== row.maintenance_margin ||
        before.max_notional !== row.max_notional
      ) {
        changed += 1;
      }
    }
  }
  return changed;
}

/** The previous state as the floor compares against it: symbol → leverage → values. */
export function previousState(universe: readonly SimTier[]): Map<string, Map<string, Values>> {
  const state = new Map<string, Map<string, Values>>();
  for (const tier of universe) {
    let ladder = state.get(tier.symbol);
    if (ladder === undefined) state.set(tier.symbol, (ladder = new Map()));
    ladder.set(tier.leverage, {
      initial_margin: tier.initial_margin,
      maintenance_margin: tier.maintenance_margin,
      max_notional: tier.max_notional,
    });
  }
  return state;
}
