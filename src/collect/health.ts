/**
 * Is collection alive? Healthy when every configured account's last successful sweep is younger
 * than a threshold. By default the threshold is twice the longest gap between consecutive firings
 * of the schedule (looking ahead a couple of weeks of firings), and never under a minute, so one
 * missed or failed sweep is tolerated and two in a row are not.
 */
import { createTask } from 'node-cron';
import type { StoreDb } from '../store/db.ts';

const LOOKAHEAD_FIRINGS = 24;
const MIN_THRESHOLD_MS = 60_000;

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
    const ageMs = now.getTime() - Date.parse(lastSuccessAt);
    if (ageMs > maxAgeMs) {
      return { healthy: false, reason: `account ${accountId}: last successful sweep at ${lastSuccessAt}, ${Math.round(ageMs / 1000)} s ago (limit ${limit})` };
    }
  }
  const oldest = accounts.map((account) => account.lastSuccessAt!).sort()[0];
  return { healthy: true, summary: `${accounts.length} account(s) swept within ${limit}; oldest last success ${oldest}` };
}

/** Every account's last success as the ledger (the public `runs` view) has it; read-only. */
export function accountHealth(db: StoreDb, accountIds: readonly string[]): AccountHealth[] {
  const lastSuccess = db.sqlite.prepare<[string], { at: string | null }>("SELECT max(observed_at) AS at FROM runs WHERE status = 'ok' AND account_id = ?");
  return accountIds.map((accountId) => ({ accountId, lastSuccessAt: lastSuccess.get(accountId)?.at ?? null }));
}
