/**
 * Which of several collectors on one Postgres history sweeps: the holder of the leadership lease
 * (store/pg/lease.ts), kept by the loop of store/pg/leadership.ts. This gate turns the loop's events
 * into what the daemon (collect/daemon.ts) asks: may I sweep now, and until when?
 *
 * - Elected: "leading (epoch N)" at info, and the daemon sweeps at once (a takeover follows a dead
 *   leader, which may have missed its firing).
 * - Lost (taken over, expired while frozen or unreachable, or a write refused with
 *   DB_LEADERSHIP_LOST): the signal handed to the sweep in flight aborts, so it stops at once; the
 *   daemon stays up as a standby and its loop keeps trying to take the lease back.
 * - Standing by: "standing by: <holder> leads (epoch N) until …" at info, once per holder and epoch.
 * - Step-down: a leader whose sweeps all failed on the network to the exchange for
 *   TIERWATCH_STEP_DOWN_AFTER firings in a row releases the lease and does not try to take it back
 *   for one lease period, so a collector on another host (another network path) can try.
 *
 * The gate is a hint for the daemon, not the safety: every write is fenced by the database.
 */
import type { Logger } from '../log.ts';
import type { LeaderLease } from '../store/pg/lease.ts';
import type { SweepGate } from './daemon.ts';
import type { SweepResult } from './sweep.ts';

/** Failures that say this host cannot reach the exchange (not that the exchange refused us). */
const UNREACHABLE = new Set(['QFEX_CONNECT', 'QFEX_TLS', 'QFEX_TIMEOUT', 'QFEX_CLOSED', 'SWEEP_TIMEOUT']);

export interface LeaderGateOptions {
  lease: LeaderLease;
  logger: Logger;
  /** Step down after this many firings in a row that could not reach the exchange; 0 never. */
  stepDownAfter: number;
  /** The monotonic clock (ms); performance.now() by default. */
  now?: () => number;
}

export class LeaderGate implements SweepGate {
  readonly #lease: LeaderLease;
  readonly #logger: Logger;
  readonly #stepDownAfter: number;
  readonly #now: () => number;
  #leading: { epoch: number; abort: AbortController } | null = null;
  readonly #listeners: Array<() => void> = [];
  #unreachableInARow = 0;
  /** After a step-down, the loop does not try to take the lease before this instant. */
  #holdOffUntil = -Infinity;
  /** The holder and epoch last reported while standing by, so the line is not repeated at every poll. */
  #lastSeen: string | null = null;
  /** Who led when we last looked, as said in /healthz. */
  #leaderSeen: { holder: string; epoch: number } | null = null;
  #looking = false;

  constructor(options: LeaderGateOptions) {
    this.#lease = options.lease;
    this.#logger = options.logger;
    this.#stepDownAfter = options.stepDownAfter;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The epoch this daemon leads under, or null. */
  get epoch(): number | null {
    return this.leadership() === null ? null : (this.#leading?.epoch ?? null);
  }

  leadership(): AbortSignal | null {
    const leading = this.#leading;
    if (leading === null) return null;
    // A fenced write that failed forgets the epoch in the lease before anyone tells us.
    if (this.#lease.epoch !== leading.epoch) {
      this.#end('the lease is no longer ours');
      return null;
    }
    return leading.abort.signal;
  }

  onLead(listener: () => void): void {
    this.#listeners.push(listener);
  }

  lost(reason: string): void {
    this.#end(reason);
  }

  /** A graceful stop released the lease: said at info, as nothing went wrong. */
  resigned(): void {
    this.#end('the daemon stopped and released the lease', 'info');
  }

  /** The leadership loop took the lease. */
  elected(epoch: number): void {
    if (this.#leading?.epoch === epoch) return;
    this.#end('a newer epoch of ours replaced it');
    this.#leading = { epoch, abort: new AbortController() };
    this.#unreachableInARow = 0;
    this.#lastSeen = null;
    this.#logger.info({ epoch, holder: this.#lease.holder }, `leading (epoch ${epoch})`);
    for (const listener of this.#listeners) listener();
  }

  /** The leadership loop found the lease gone (taken over, or not renewable for a whole lease). */
  lostLease(epoch: number, reason: 'taken-over' | 'unreachable'): void {
    if (this.#leading?.epoch !== epoch) return;
    this.#end(
      reason === 'taken-over'
        ? 'the lease was taken over or ran out'
        : 'the database could not be reached to renew the lease for a whole lease period',
    );
  }

  /** Whether the loop may try to take the lease now (not during a step-down's hold-off). */
  mayAcquire(): boolean {
    return this.#now() >= this.#holdOffUntil;
  }

  /** An attempt to take the lease found another leader: say who, once per holder and epoch. */
  standingBy(): void {
    if (this.#looking) return;
    this.#looking = true;
    this.#lease
      .current()
      .then((row) => {
        if (row === null || !row.live) return;
        this.#leaderSeen = { holder: row.holder, epoch: row.epoch };
        const seen = `${row.holder} ${row.epoch}`;
        if (seen === this.#lastSeen) return;
        this.#lastSeen = seen;
        this.#logger.info(
          { leader: row.holder, epoch: row.epoch, expires_at: row.expires_at },
          `standing by: ${row.holder} leads (epoch ${row.epoch}) until ${row.expires_at} unless it renews`,
        );
      })
      .catch(() => {})
      .finally(() => {
        this.#looking = false;
      });
  }

  /** This daemon's part, in words: "leading (epoch 3)", or "standing by: host-b:812:… leads (epoch 3)". */
  describeRole(): string {
    const epoch = this.epoch;
    if (epoch !== null) return `leading (epoch ${epoch})`;
    const seen = this.#leaderSeen;
    return seen === null ? 'standing by' : `standing by: ${seen.holder} leads (epoch ${seen.epoch})`;
  }

  /** After each firing: counts the firings that could not reach the exchange, and steps down after K. */
  afterSweeps(results: readonly SweepResult[]): void {
    if (this.#leading === null || results.length === 0) return;
    const unreachable = results.every((result) => !result.ok && UNREACHABLE.has(result.error.code));
    this.#unreachableInARow = unreachable ? this.#unreachableInARow + 1 : 0;
    if (this.#stepDownAfter === 0 || this.#unreachableInARow < this.#stepDownAfter) return;
    const { ttlMs } = this.#lease.settings;
    this.#holdOffUntil = this.#now() + ttlMs;
    this.#logger.warn(
      { sweeps: this.#unreachableInARow, hold_off_ms: ttlMs },
      `stepping down: ${this.#unreachableInARow} sweeps in a row could not reach the exchange (TIERWATCH_STEP_DOWN_AFTER); another collector may take over`,
    );
    this.#end('stepped down');
    this.#lease.release().catch((error: unknown) => {
      this.#logger.warn({ err: error }, 'could not release the lease on stepping down; it runs out by itself');
    });
  }

  #end(reason: string, level: 'info' | 'warn' = 'warn'): void {
    const leading = this.#leading;
    if (leading === null) return;
    this.#leading = null;
    this.#unreachableInARow = 0;
    leading.abort.abort();
    this.#logger[level]({ epoch: leading.epoch }, `no longer leading (epoch ${leading.epoch}): ${reason}`);
  }
}
