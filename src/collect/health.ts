/**
 * Is collection alive? Healthy when every configured account's last successful sweep is younger
 * than a threshold. By default the threshold is twice the longest gap between consecutive firings
 * of the schedule (looking ahead a couple of weeks of firings), and never under a minute, so one
 * missed or failed sweep is tolerated and two in a row are not.
 *
 * A last success in the future is unhealthy too: it was stamped by a clock running ahead (or this
 * clock went back), and every sweep fails with CLOCK_BEHIND until that instant has passed, so
 * calling it healthy would hide a daemon that collects nothing. See `tierwatch rewind`.
 */
import { createTask } from 'node-cron';
import type { StoreDb } from '../store/db.ts';

const LOOKAHEAD_FIRINGS = 24;
const MIN_THRESHOLD_MS = 60_000;
/** How far in the future a last success may be before it counts as a clock problem (small steps of NTP). */
export const FUTURE_TOLERANCE_MS = 60_000;

/** How far `lastSuccessAt` is ahead of `now`, beyond the tolerance; null when it is not. */
export function aheadOfNowMs(lastSuccessAt: string, now: Date): number | null {
  const aheadMs = Date.parse(lastSuccessAt) - now.getTime();
  return aheadMs > FUTURE_TOLERANCE_MS ? aheadMs : null;
}

/** The reason given for a last success in the future. */
export function futureReason(accountId: string, lastSuccessAt: string, aheadMs: number): string {
  return (
    `account ${accountId}: last successful sweep at ${lastSuccessAt} is ${Math.round(aheadMs / 1000)} s in the future ` +
    '(a clock ran ahead or went back; sweeps fail with CLOCK_BEHIND until then: see `tierwatch rewind`)'
  );
}

/** The longest gap between consecutive upcoming firings of a cron schedule (UTC). */
export function longestGapMs(schedule: string): number {
  const task = createTask(schedule, () => undefined, { timezone: 'UTC' });
  try {
    const firings = task.getNextRuns(LOOKAHEAD_FIRINGS).map((date) => date.getTime());
    let longest = 0;
    for (let i = 1; i < firings.length; i += 1) longest = Math.max(longest, firings[i]! - firings[i - 1]!);
    return longest;
  } finally {
    void task.destroy();
  }
}

export function defaultHealthThresholdMs(schedule: string): number {
  return Math.max(MIN_THRESHOLD_MS, 2 * longestGapMs(schedule));
}

/** TIERWATCH_HEALTH_MAX_AGE, or the default derived from the schedule. */
export function healthMaxAgeMs(config: { healthMaxAgeMs: number | null; schedule: string }): number {
  return config.healthMaxAgeMs ?? defaultHealthThresholdMs(config.schedule);
}

export interface AccountHealth {
  accountId: string;
  lastSuccessAt: string | null;
}

export type HealthVerdict = { healthy: true; summary: string } | { healthy: false; reason: string };

/** Pure: judges the last successes against the threshold at `now`. */
export function judgeHealth(accounts: AccountHealth[], maxAgeMs: number, now: Date): HealthVerdict {
  const limit = `${Math.round(maxAgeMs / 1000)} s`;
  for (const { accountId, lastSuccessAt } of accounts) {
    if (lastSuccessAt === null) return { healthy: false, reason: `account ${accountId} has no successful sweep yet` };
    const aheadMs = aheadOfNowMs(lastSuccessAt, now);
    if (aheadMs !== null) return { healthy: false, reason: futureReason(accountId, lastSuccessAt, aheadMs) };
    const ageMs = now.getTime() - Date.parse(lastSuccessAt);
    if (ageMs > maxAgeMs) {
      return {
        healthy: false,
        reason: `account ${accountId}: last successful sweep at ${lastSuccessAt}, ${Math.round(ageMs / 1000)} s ago (limit ${limit})`,
      };
    }
  }
  const oldest = accounts.map((account) => account.lastSuccessAt!).sort()[0];
  return {
    healthy: true,
    summary: `${accounts.length} account(s) swept within ${limit}; oldest last success ${oldest}`,
  };
}

/** Every account's last success as the ledger (the public `runs` view) has it; read-only. */
export function accountHealth(db: StoreDb, accountIds: readonly string[]): AccountHealth[] {
  const lastSuccess = db.sqlite.prepare<[string], { at: string | null }>(
    "SELECT max(observed_at) AS at FROM runs WHERE status = 'ok' AND account_id = ?",
  );
  return accountIds.map((accountId) => ({ accountId, lastSuccessAt: lastSuccess.get(accountId)?.at ?? null }));
}
