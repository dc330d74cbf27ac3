/**
 * Tier rows as the simulator serves them, and the universes it starts from. Rows are shaped like the
 * documented example (docs/qfex-protocol.md §4): initial_margin = 1/leverage, maintenance_margin =
 * initial × 2/3 at full float precision, max_notional falling as leverage rises, leverage a string.
 */
import { createHash } from 'node:crypto';
import { randomInt, randomUuid, seededRandom } from './random.ts';

export interface SimTier {
  id: string;
  symbol: string;
  /** A decimal string, as the exchange sends it ("20"). */
  leverage: string;
  initial_margin: number;
  maintenance_margin: number;
  max_notional: number;
}

/** The symbols named in the QFEX docs (docs/qfex-protocol.md §8), with a plausible notional cap at leverage 0. */
const DEFAULT_SYMBOLS: ReadonlyArray<{ symbol: string; baseNotional: number; levels: readonly number[] }> = [
  { symbol: 'AAPL-USD', baseNotional: 400_000, levels: [1, 2, 3, 5, 10, 20] },
  { symbol: 'META-USD', baseNotional: 200_000, levels: [1, 2, 3, 5, 10, 20] },
  { symbol: 'PLTR-USD', baseNotional: 150_000, levels: [1, 2, 3, 5, 10] },
  { symbol: 'GOOG-USD', baseNotional: 300_000, levels: [1, 2, 3, 5, 10, 20] },
  { symbol: 'TSLA-USD', baseNotional: 250_000, levels: [1, 2, 3, 5, 10] },
  { symbol: 'SP500-USD', baseNotional: 1_000_000, levels: [1, 2, 3, 5, 10, 20] },
  { symbol: 'US100-USD', baseNotional: 800_000, levels: [1, 2, 3, 5, 10, 20] },
  { symbol: 'CL-USD', baseNotional: 500_000, levels: [1, 2, 3, 5, 10] },
  { symbol: 'NATGAS-USD', baseNotional: 200_000, levels: [1, 2, 3, 5] },
  { symbol: 'COPPER-USD', baseNotional: 300_000, levels: [1, 2, 3, 5, 10] },
  { symbol: 'EUR-USD', baseNotional: 2_000_000, levels: [1, 2, 3, 5, 10, 20] },
];

/** A stable UUID-shaped id derived from the tier's identity, so restarts serve the same ids. */
export function stableTierId(symbol: string, leverage: string): string {
  const hex = createHash('sha1').update(`${symbol}:${leverage}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * A tier with the documented shape: margins from the leverage, and a notional cap that falls
 * linearly with leverage (META at base 200,000 gives 195,000 at 1× and 100,000 at 20×, as in the docs).
 */
export function makeTier(symbol: string, leverage: number | string, baseNotional: number, id?: string): SimTier {
  const lev = Number(leverage);
  const levText = String(leverage);
  const initial = 1 / lev;
  return {
    id: id ?? stableTierId(symbol, levText),
    symbol,
    leverage: levText,
    initial_margin: initial,
    maintenance_margin: (initial * 2) / 3,
    max_notional: Math.max(1000, Math.round(baseNotional * (1 - lev / 40))),
  };
}

/** Exchange order: by symbol (code-unit order), then numeric leverage ascending (docs/qfex-protocol.md §4: our choice, the order is not documented). */
export function compareTiers(a: SimTier, b: SimTier): number {
  if (a.symbol !== b.symbol) return a.symbol < b.symbol ? -1 : 1;
  return Number(a.leverage) - Number(b.leverage);
}

export function cloneTier(tier: SimTier): SimTier {
  return { ...tier };
}

/** The realistic default: the documented symbols, 4–6 leverage levels each, sorted. */
export function defaultUniverse(): SimTier[] {
  const tiers: SimTier[] = [];
  for (const { symbol, baseNotional, levels } of DEFAULT_SYMBOLS) {
    for (const lev of levels) tiers.push(makeTier(symbol, lev, baseNotional));
  }
  return tiers.sort(compareTiers);
}

/** Leverage levels of synthetic symbols: ten per symbol. */
const SYNTHETIC_LEVELS = [1, 2, 3, 4, 5, 10, 15, 20, 25, 30] as const;

/**
 * `count` tiers over synthetic symbols `S000001-USD`, … (ten levels each, the last symbol possibly
 * partial), with seeded notionals and ids: the same (count, seed) always gives the same rows.
 * For benchmarks (100,000 tiers builds in well under a second).
 */
export function syntheticUniverse(count: number, seed = 1): SimTier[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`Expected a tier count >= 0, got ${count}`);
  const random = seededRandom(seed);
  const tiers: SimTier[] = [];
  const width = Math.max(6, String(Math.ceil(count / SYNTHETIC_LEVELS.length)).length);
  for (let s = 0; tiers.length < count; s++) {
    const symbol = `S${String(s + 1).padStart(width, '0')}-USD`;
    const baseNotional = 50_000 + randomInt(random, 2_000) * 1_000;
    for (const lev of SYNTHETIC_LEVELS) {
      if (tiers.length >= count) break;
      tiers.push(makeTier(symbol, lev, baseNotional, randomUuid(random)));
    }
  }
  return tiers; // already in exchange order: zero-padded symbols, ascending levels
}
