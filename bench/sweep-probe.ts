/**
 * Instruments for the sweep benchmark (sweep-worker.ts): timing the phases of a real sweepAccount
 * call without changing its code path (the session opener and the store are wrapped, not
 * replaced), and timing diffTiers apart from the store on a mirror of the current state.
 */
import { CurrentTiers, type CurrentVersion } from '../src/history/current-tiers.ts';
import { diffTiers } from '../src/history/diff.ts';
import type { Tier } from '../src/history/tier.ts';
import { openSession, type QfexClientOptions, type QfexSession } from '../src/qfex/client.ts';
import { openDatabase } from '../src/store/db.ts';
import type { ChangeRecord, HistoryStore } from '../src/store/history-store.ts';
import { nowMs } from './stats.ts';

export interface Phases {
  connect: number;
  requests: number;
  commit: number;
  /** The WAL checkpoint sweepAccount runs after the sweep (outside its durationMs). */
  checkpoint: number;
  lastTiers: Tier[] | null;
}

/** Wraps a store and the session opener so the phases of a real sweepAccount call can be timed. */
export function instrument(store: HistoryStore) {
  const phases: Phases = { connect: 0, requests: 0, commit: 0, checkpoint: 0, lastTiers: null };
  const timedOpen = async (options: QfexClientOptions): Promise<QfexSession> => {
    const start = nowMs();
    const session = await openSession(options);
    phases.connect += nowMs() - start;
    return {
      get desynchronised() {
        return session.desynchronised;
      },
      async requestLeveragePage(limit, offset) {
        const began = nowMs();
        try {
          return await session.requestLeveragePage(limit, offset);
        } finally {
          phases.requests += nowMs() - began;
        }
      },
      close: () => session.close(),
    };
  };
  // A Proxy that calls through to the real object, so its private fields still work.
  const timedStore = new Proxy(store, {
    get(target, property) {
      if (property === 'commitSweep') {
        return (runId: number, sweep: Parameters<HistoryStore['commitSweep']>[1]) => {
          phases.lastTiers = sweep.tiers;
          const start = nowMs();
          try {
            return target.commitSweep(runId, sweep);
          } finally {
            phases.commit += nowMs() - start;
          }
        };
      }
      if (property === 'checkpoint') {
        return () => {
          const start = nowMs();
          try {
            return target.checkpoint();
          } finally {
            phases.checkpoint += nowMs() - start;
          }
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const reset = () => {
    phases.connect = 0;
    phases.requests = 0;
    phases.commit = 0;
    phases.checkpoint = 0;
    phases.lastTiers = null;
  };
  return { phases, timedOpen, timedStore, reset };
}

/** A copy of the account's current state for timing diffTiers apart from the store. */
export class DiffMirror {
  current: CurrentTiers;
  constructor(dbPath: string) {
    this.current = loadCurrent(dbPath).tiers;
  }
  /** Times the diff of `tiers` against the mirror, then applies the stored changes to it. */
  timeAndApply(tiers: Tier[], changes: readonly ChangeRecord[]): number {
    const start = nowMs();
    const diff = diffTiers(this.current, tiers);
    const elapsed = nowMs() - start;
    const expected = diff.added.length + diff.removed.length + diff.changed.length;
    if (expected !== changes.length) {
      throw new Error(`diff mirror disagrees with the store: ${expected} vs ${changes.length} changes`);
    }
    for (const change of changes) {
      if (change.change === 'removed') this.current.delete(change.symbol, change.leverage);
      else {
        this.current.set({
          version_id: 0,
          symbol: change.symbol,
          leverage: change.leverage,
          exchange_id: null,
          initial_margin: change.new_initial_margin!,
          maintenance_margin: change.new_maintenance_margin!,
          max_notional: change.new_max_notional!,
        });
      }
    }
    return elapsed;
  }
}

/** Reads the account's current versions the way HistoryStore does on a cold start, timed. */
export function loadCurrent(dbPath: string): { tiers: CurrentTiers; ms: number } {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const statement = db.sqlite.prepare<[string], CurrentVersion>(
      `SELECT version_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id
         FROM tier_version WHERE account_id = ? AND valid_to IS NULL`,
    );
    const start = nowMs();
    const tiers = CurrentTiers.from(statement.iterate('primary'));
    return { tiers, ms: nowMs() - start };
  } finally {
    db.close();
  }
}
