/**
 * The leadership loop of one collector: as a standby, try to take the lease every pollEveryMs; as
 * the leader, renew it every renewEveryMs; on stop, release it so a standby takes over at once.
 *
 * The loop only keeps the lease; what a leader does with it (collect, deliver webhooks) is its
 * caller's, told through `onElected` / `onLost`. Our own belief is a hint: every write is fenced by
 * the database (LeaderLease.writeTransaction). Still, a leader that cannot renew (the database is
 * unreachable) steps down by itself once ttlMs has passed since its last successful renewal, since
 * by then a standby may have taken over.
 */
import type { LeaderLease } from './lease.ts';

export interface LeadershipEvents {
  /** We took the lease with this epoch. */
  onElected?: (epoch: number) => void;
  /** We no longer hold the lease of this epoch: taken over, expired, or stepped down unreachable. */
  onLost?: (epoch: number, reason: 'taken-over' | 'unreachable') => void;
  /** A database error during an attempt; the loop goes on. */
  onError?: (error: unknown) => void;
  /** An attempt to take the lease found another holder's lease live. */
  onStandby?: () => void;
}

export interface LeadershipOptions extends LeadershipEvents {
  signal: AbortSignal;
  /** Release the lease when the signal aborts (a graceful stop; default true). */
  releaseOnStop?: boolean;
  /** The monotonic clock, injectable for tests; performance.now() by default. */
  now?: () => number;
  /** Asked before each attempt to take the lease: false holds off (a leader that stepped down). */
  mayAcquire?: () => boolean;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Keeps (or waits for) the lease until `signal` aborts, then releases it unless told not to.
 * Resolves when stopped; never rejects (errors go to onError).
 */
export async function keepLeadership(lease: LeaderLease, options: LeadershipOptions): Promise<void> {
  const { signal } = options;
  const now = options.now ?? (() => performance.now());
  const { ttlMs, renewEveryMs, pollEveryMs } = lease.settings;
  let lastRenewal = now();
  while (!signal.aborted) {
    const held = lease.epoch;
    try {
      if (held === null) {
        const epoch = options.mayAcquire?.() === false ? null : await lease.tryAcquire();
        if (epoch !== null) {
          lastRenewal = now();
          options.onElected?.(epoch);
        } else options.onStandby?.();
      } else if (await lease.renew()) {
        lastRenewal = now();
      } else {
        options.onLost?.(held, 'taken-over');
      }
    } catch (error) {
      options.onError?.(error);
      if (held !== null && lease.epoch === held && now() - lastRenewal >= ttlMs) {
        lease.forget();
        options.onLost?.(held, 'unreachable');
      }
    }
    await sleep(lease.epoch === null ? pollEveryMs : renewEveryMs, signal);
  }
  if (options.releaseOnStop ?? true) await lease.release().catch((error: unknown) => options.onError?.(error));
}
