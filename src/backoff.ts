/**
 * How long to wait before retry number `attempt` (0-based): the one backoff computation used by
 * the pager (a page or an auth answer refused with RateLimited/ServerError), the collector (a sweep
 * retried on a fresh connection) and the alert delivery (a webhook POST that failed).
 *
 * Exponential from `baseMs` (base·2ⁿ), with jitter on the upper half (a uniform wait between half
 * and all of it, so many clients retrying at once spread out without any retrying at once), never
 * longer than `maxMs`. Pure: the random source is injected, so tests fix the jitter.
 */

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** Uniform [0, 1) source for the jitter; Math.random by default. */
  random?: () => number;
  /** A wait the other side asked for (a retry-after hint): used when longer than the backoff, still capped at `maxMs`. */
  hintMs?: number;
  /**
   * Where `maxMs` applies. 'before-jitter' (default): base·2ⁿ is capped first, so waits at the cap
   * stay spread over [maxMs/2, maxMs] (the collector, the alerts). 'after-jitter': the jittered wait
   * (or the hint) is capped, so far past the cap every wait is `maxMs` (the pager, whose hint must be
   * honoured up to the cap).
   */
  cap?: 'before-jitter' | 'after-jitter';
}

/** The wait in whole milliseconds before retry `attempt` (0 = the first retry). */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const { baseMs, maxMs, random = Math.random, hintMs = 0, cap = 'before-jitter' } = options;
  const exponential = baseMs * 2 ** attempt;
  const ceiling = cap === 'before-jitter' ? Math.min(maxMs, exponential) : exponential;
  const jittered = ceiling / 2 + (random() * ceiling) / 2;
  return Math.round(Math.min(maxMs, Math.max(hintMs, jittered)));
}
