/**
 * Is collection stale? Pure judgement plus the persisted state that makes `stale` and `recovered`
 * one notification each, across restarts.
 *
 * An account is stale when its last successful sweep — or the start of this daemon, whichever is
 * later — is older than the health threshold. Counting from the start means a daemon that was down
 * (which a dead process cannot report anyway; the health check does) gets a full threshold to
 * sweep again before it cries stale, instead of a stale/recovered pair a second apart.
 *
 * A last success in the future is stale at once (as `health` calls it unhealthy): it comes from a
 * clock that ran ahead, and no sweep can be stored until that instant has passed.
 */
import { aheadOfNowMs, futureReason, type AccountHealth } from '../collect/health.ts';

export const STALENESS_KEY = 'staleness';

/** The persisted state: `since` = when the current state began (the stale notification's time). */
export interface StalenessState {
  state: 'fresh' | 'stale';
  since: string;
}

export type StalenessVerdict =
  { stale: false; lastSuccessAt: string | null } | { stale: true; reason: string; lastSuccessAt: string | null };

/** Pure: judges every account at `now`; stale when any one is. */
export function judgeStaleness(
  accounts: readonly AccountHealth[],
  maxAgeMs: number,
  now: Date,
  startedAt: Date,
): StalenessVerdict {
  let oldest: string | null = null;
  for (const { accountId, lastSuccessAt } of accounts) {
    const aheadMs = lastSuccessAt === null ? null : aheadOfNowMs(lastSuccessAt, now);
    if (aheadMs !== null) {
      return { stale: true, reason: futureReason(accountId, lastSuccessAt!, aheadMs), lastSuccessAt };
    }
    const reference = Math.max(lastSuccessAt === null ? -Infinity : Date.parse(lastSuccessAt), startedAt.getTime());
    const ageMs = now.getTime() - reference;
    if (ageMs > maxAgeMs) {
      const reason =
        lastSuccessAt !== null && Date.parse(lastSuccessAt) >= startedAt.getTime()
          ? `account ${accountId}: last successful sweep at ${lastSuccessAt}, ${Math.round(ageMs / 1000)} s ago`
          : `account ${accountId}: no successful sweep since tierwatch started at ${startedAt.toISOString()}, ${Math.round(ageMs / 1000)} s ago` +
            (lastSuccessAt === null ? '' : ` (the last one was at ${lastSuccessAt})`);
      return { stale: true, reason, lastSuccessAt };
    }
    if (lastSuccessAt !== null && (oldest === null || lastSuccessAt < oldest)) oldest = lastSuccessAt;
  }
  // Null while some account has not succeeded yet (within the grace period after start).
  return { stale: false, lastSuccessAt: accounts.some((account) => account.lastSuccessAt === null) ? null : oldest };
}

/** The transition the verdict calls for from the persisted state, if any. */
export function staleTransition(
  previous: StalenessState | null,
  verdict: StalenessVerdict,
): 'stale' | 'recovered' | null {
  const wasStale = previous?.state === 'stale';
  if (verdict.stale && !wasStale) return 'stale';
  // Recovered only once every account has succeeded again, not merely because a restart reset the clock.
  if (!verdict.stale && wasStale && verdict.lastSuccessAt !== null && verdict.lastSuccessAt > previous.since) {
    return 'recovered';
  }
  return null;
}

export function parseStalenessState(text: string | null): StalenessState | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<StalenessState>;
    return (value.state === 'fresh' || value.state === 'stale') && typeof value.since === 'string'
      ? { state: value.state, since: value.since }
      : null;
  } catch {
    return null;
  }
}
