/**
 * The simulator's mutable state: each account's tiers in exchange order, plus an append-only change
 * log of every mutation, so a test can compare what the exchange did with what tierwatch recorded.
 * Pure in-memory bookkeeping; no I/O, the clock is injected.
 */
import { cloneTier, compareTiers, makeTier, type SimTier } from './universe.ts';

export type SimChangeKind = 'added' | 'removed' | 'changed';

export interface SimChange {
  /** 1-based position in the change log; `mark()` returns the last one. */
  seq: number;
  /** Milliseconds, from the simulator's clock. */
  at: number;
  account: string;
  kind: SimChangeKind;
  symbol: string;
  leverage: string;
  before: SimTier | null;
  after: SimTier | null;
}

export type TierPatch = Partial<Pick<SimTier, 'id' | 'initial_margin' | 'maintenance_margin' | 'max_notional'>>;

export type TierDiff = Pick<SimChange, 'kind' | 'symbol' | 'leverage' | 'before' | 'after'>;

interface AccountTiers {
  /** In exchange order (symbol, numeric leverage). */
  rows: SimTier[];
  byKey: Map<string, SimTier>;
  /** Bumped by every mutation; the page cache keys on it. */
  version: number;
}

/** Identity of a tier: "20", "20.0" and 20 are the same leverage. */
function keyOf(symbol: string, leverage: string | number): string {
  return `${symbol}\u0000${Number(leverage)}`;
}

function sameTier(a: SimTier, b: SimTier): boolean {
  return (
    a.id === b.id &&
    Object.is(a.initial_margin, b.initial_margin) &&
    Object.is(a.maintenance_margin, b.maintenance_margin) &&
    Object.is(a.max_notional, b.max_notional) &&
    a.leverage === b.leverage
  );
}

/**
 * What changed from one tier set to another, as added/removed/changed entries (a row counts as
 * changed when any served field differs, the id included). Order: the `after` set's order, then removals.
 */
export function diffTiers(before: readonly SimTier[], after: readonly SimTier[]): TierDiff[] {
  const old = new Map(before.map((t) => [keyOf(t.symbol, t.leverage), t]));
  const diffs: TierDiff[] = [];
  for (const tier of after) {
    const key = keyOf(tier.symbol, tier.leverage);
    const prev = old.get(key);
    old.delete(key);
    if (prev === undefined) {
      diffs.push({ kind: 'added', symbol: tier.symbol, leverage: tier.leverage, before: null, after: cloneTier(tier) });
    } else if (!sameTier(prev, tier)) {
      diffs.push({
        kind: 'changed',
        symbol: tier.symbol,
        leverage: tier.leverage,
        before: cloneTier(prev),
        after: cloneTier(tier),
      });
    }
  }
  for (const prev of old.values()) {
    diffs.push({ kind: 'removed', symbol: prev.symbol, leverage: prev.leverage, before: cloneTier(prev), after: null });
  }
  return diffs;
}

export class TierBook {
  readonly changeLog: SimChange[] = [];
  private readonly accounts = new Map<string, AccountTiers>();
  private readonly now: () => number;
  private readonly listeners: Array<(change: SimChange) => void> = [];

  /** Takes copies of the given tiers; the caller's arrays are never touched. */
  constructor(universe: Record<string, SimTier[]>, now: () => number) {
    this.now = now;
    for (const [account, tiers] of Object.entries(universe)) this.accounts.set(account, this.build(tiers));
  }

  private build(tiers: readonly SimTier[]): AccountTiers {
    const rows = tiers.map(cloneTier).sort(compareTiers);
    const byKey = new Map<string, SimTier>();
    for (const row of rows) {
      const key = keyOf(row.symbol, row.leverage);
      if (byKey.has(key)) throw new Error(`Duplicate tier ${row.symbol} × ${row.leverage} in the simulator universe`);
      byKey.set(key, row);
    }
    return { rows, byKey, version: 0 };
  }

  /** Called after every logged change (the simulator logs them). */
  onChange(listener: (change: SimChange) => void): void {
    this.listeners.push(listener);
  }

  accountIds(): string[] {
    return [...this.accounts.keys()];
  }

  /** The live rows in exchange order, for serving; callers must not modify them. Unknown account → []. */
  rows(account: string): readonly SimTier[] {
    return this.accounts.get(account)?.rows ?? [];
  }

  version(account: string): number {
    return this.accounts.get(account)?.version ?? 0;
  }

  /** A deep copy of the account's current tiers, in exchange order. */
  tiers(account: string): SimTier[] {
    return this.rows(account).map(cloneTier);
  }

  find(account: string, symbol: string, leverage: string | number): SimTier | undefined {
    const tier = this.accounts.get(account)?.byKey.get(keyOf(symbol, leverage));
    return tier === undefined ? undefined : cloneTier(tier);
  }

  private account(account: string): AccountTiers {
    let state = this.accounts.get(account);
    if (state === undefined) {
      state = { rows: [], byKey: new Map(), version: 0 };
      this.accounts.set(account, state);
    }
    return state;
  }

  private indexOf(state: AccountTiers, tier: SimTier): number {
    let lo = 0;
    let hi = state.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareTiers(state.rows[mid]!, tier) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private log(account: string, diff: TierDiff): SimChange {
    const change: SimChange = { seq: this.changeLog.length + 1, at: this.now(), account, ...diff };
    this.changeLog.push(change);
    for (const listener of this.listeners) listener(change);
    return change;
  }

  private insert(account: string, tier: SimTier): SimChange {
    const state = this.account(account);
    const row = cloneTier(tier);
    state.rows.splice(this.indexOf(state, row), 0, row);
    state.byKey.set(keyOf(row.symbol, row.leverage), row);
    state.version++;
    return this.log(account, {
      kind: 'added',
      symbol: row.symbol,
      leverage: row.leverage,
      before: null,
      after: cloneTier(row),
    });
  }

  private delete(account: string, existing: SimTier): SimChange {
    const state = this.account(account);
    state.rows.splice(this.indexOf(state, existing), 1);
    state.byKey.delete(keyOf(existing.symbol, existing.leverage));
    state.version++;
    return this.log(account, {
      kind: 'removed',
      symbol: existing.symbol,
      leverage: existing.leverage,
      before: cloneTier(existing),
      after: null,
    });
  }

  private replace(account: string, existing: SimTier, next: SimTier): SimChange {
    const state = this.account(account);
    const row = cloneTier(next);
    state.rows[this.indexOf(state, existing)] = row;
    state.byKey.set(keyOf(row.symbol, row.leverage), row);
    state.version++;
    return this.log(account, {
      kind: 'changed',
      symbol: row.symbol,
      leverage: row.leverage,
      before: cloneTier(existing),
      after: cloneTier(row),
    });
  }

  private existing(account: string, symbol: string, leverage: string | number): SimTier {
    const tier = this.accounts.get(account)?.byKey.get(keyOf(symbol, leverage));
    if (tier === undefined) throw new Error(`No tier ${symbol} × ${leverage} in account ${account}`);
    return tier;
  }

  /** Changes some values of an existing tier (throws if absent). Logs one 'changed' entry. */
  editTier(account: string, symbol: string, leverage: string | number, patch: TierPatch): SimChange {
    const existing = this.existing(account, symbol, leverage);
    return this.replace(account, existing, {
      ...existing,
      ...patch,
      symbol: existing.symbol,
      leverage: existing.leverage,
    });
  }

  /** Removes an existing tier (throws if absent). Logs one 'removed' entry. */
  removeTier(account: string, symbol: string, leverage: string | number): SimChange {
    return this.delete(account, this.existing(account, symbol, leverage));
  }

  /** Adds a tier that does not exist yet (throws if present). Logs one 'added' entry. */
  addTier(account: string, tier: SimTier): SimChange {
    if (this.accounts.get(account)?.byKey.has(keyOf(tier.symbol, tier.leverage))) {
      throw new Error(`Tier ${tier.symbol} × ${tier.leverage} already exists in account ${account}`);
    }
    return this.insert(account, tier);
  }

  /** Lists a new symbol with the given leverage levels (default 1, 2, 3, 5, 10). One 'added' per tier. */
  listSymbol(
    account: string,
    symbol: string,
    options: { levels?: ReadonlyArray<number | string>; baseNotional?: number } = {},
  ): SimChange[] {
    const levels = options.levels ?? [1, 2, 3, 5, 10];
    const tiers = levels.map((lev) => makeTier(symbol, lev, options.baseNotional ?? 250_000));
    for (const tier of tiers) {
      if (this.accounts.get(account)?.byKey.has(keyOf(tier.symbol, tier.leverage))) {
        throw new Error(`Tier ${tier.symbol} × ${tier.leverage} already exists in account ${account}`);
      }
    }
    return tiers.map((tier) => this.insert(account, tier));
  }

  /** Removes every tier of a symbol. One 'removed' per tier; none if the symbol is not listed. */
  delistSymbol(account: string, symbol: string): SimChange[] {
    return this.rows(account)
      .filter((t) => t.symbol === symbol)
      .map((t) => this.delete(account, t));
  }

  /** Replaces an account's tiers wholesale, logging the net difference entry by entry. */
  setTiers(account: string, tiers: readonly SimTier[]): SimChange[] {
    this.build(tiers); // rejects duplicates before anything changes
    const changes: SimChange[] = [];
    for (const diff of diffTiers(this.rows(account), tiers)) {
      if (diff.kind === 'added') changes.push(this.insert(account, diff.after!));
      else if (diff.kind === 'removed') {
        changes.push(this.delete(account, this.existing(account, diff.symbol, diff.leverage)));
      } else {
        changes.push(this.replace(account, this.existing(account, diff.symbol, diff.before!.leverage), diff.after!));
      }
    }
    return changes;
  }

  /** A marker for `revertTo`: the sequence number of the latest change (0 when none). */
  mark(): number {
    return this.changeLog.length;
  }

  /** The account's tiers as they were at `mark`, reconstructed by undoing later changes. */
  tiersAt(account: string, mark: number): SimTier[] {
    const state = new Map(this.rows(account).map((t) => [keyOf(t.symbol, t.leverage), cloneTier(t)]));
    for (let i = this.changeLog.length - 1; i >= mark && i >= 0; i--) {
      const change = this.changeLog[i]!;
      if (change.account !== account) continue;
      const key = keyOf(change.symbol, change.leverage);
      if (change.before === null) state.delete(key);
      else state.set(key, cloneTier(change.before));
    }
    return [...state.values()].sort(compareTiers);
  }

  /**
   * Brings every account back to its state at `mark` (from `mark()`), logging the net differences
   * as new changes (the log itself is never rewritten).
   */
  revertTo(mark: number): SimChange[] {
    const touched = new Set(this.changeLog.slice(mark).map((c) => c.account));
    const targets = [...touched].map((account) => [account, this.tiersAt(account, mark)] as const);
    return targets.flatMap(([account, tiers]) => this.setTiers(account, tiers));
  }
}
