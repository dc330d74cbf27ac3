/**
 * The open versions of one account, indexed by identity (symbol, then leverage).
 *
 * Why not one Map keyed by tierKey(symbol, leverage): every sweep builds 100,000 fresh key strings,
 * and hashing each freshly concatenated string costs more than the rest of the diff (measured about
 * 2× slower). Symbol and leverage strings are short and hash fast; one small Map per symbol is cheap.
 */
import type { TierValues } from './tier.ts';

/** A tier's open version as the store knows it. */
export interface CurrentVersion extends TierValues {
  /** The tier_version row (its primary key), so the store can close it without a lookup. */
  version_id: number;
  symbol: string;
  leverage: string;
  exchange_id: string | null;
}

export class CurrentTiers {
  readonly #bySymbol = new Map<string, Map<string, CurrentVersion>>();
  #size = 0;

  static from(versions: Iterable<CurrentVersion>): CurrentTiers {
    const tiers = new CurrentTiers();
    for (const version of versions) tiers.set(version);
    return tiers;
  }

  get size(): number {
    return this.#size;
  }

  get(symbol: string, leverage: string): CurrentVersion | undefined {
    return this.#bySymbol.get(symbol)?.get(leverage);
  }

  /** Adds or replaces the open version of the version's (symbol, leverage). */
  set(version: CurrentVersion): void {
    let ladder = this.#bySymbol.get(version.symbol);
    if (ladder === undefined) {
      ladder = new Map();
      this.#bySymbol.set(version.symbol, ladder);
    }
    if (!ladder.has(version.leverage)) this.#size += 1;
    ladder.set(version.leverage, version);
  }

  delete(symbol: string, leverage: string): boolean {
    const ladder = this.#bySymbol.get(symbol);
    if (ladder === undefined || !ladder.delete(leverage)) return false;
    if (ladder.size === 0) this.#bySymbol.delete(symbol);
    this.#size -= 1;
    return true;
  }

  *values(): IterableIterator<CurrentVersion> {
    for (const ladder of this.#bySymbol.values()) yield* ladder.values();
  }
}
