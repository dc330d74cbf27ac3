/**
 * Checks a sweep must pass before it is stored, as pure functions over what the store read: the
 * clock (an observation must come after the account's last one) and slow erosion (a sweep must not
 * have lost most of the tiers the account had at its largest within a recent window). Each throws
 * the TierwatchError that fails the run; nothing here reads the clock or the database.
 */
import { TierwatchError } from '../errors.ts';
import type { TierDiff } from './diff.ts';

/** How far back the erosion guard looks for the account's largest sweep. */
export const EROSION_WINDOW_MS = 24 * 3_600_000;

/** "1 h 2 min 3.5 s", "250 ms", "3 d 4 h": a gap between two instants, for people. */
export function formatGap(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 && parts.length < 3) parts.push(`${Math.round(rest / 100) / 10} s`);
  return parts.join(' ');
}

/**
 * Throws CLOCK_BEHIND unless `observedAt` (ISO) is after `lastObservedAt`, the account's last
 * successful observation. The versions are intervals in time: one that starts before the interval
 * it would close cannot be stored. Either the clock went back, or an earlier sweep was stamped by a
 * clock running ahead; the message says by how much and names the way back from the latter.
 */
export function checkClock(input: {
  runId: number;
  accountId: string;
  observedAt: string;
  lastObservedAt: string | null;
}): void {
  const { runId, accountId, observedAt, lastObservedAt } = input;
  if (lastObservedAt === null || observedAt > lastObservedAt) return;
  const behindMs = Date.parse(lastObservedAt) - Date.parse(observedAt);
  const by = behindMs === 0 ? 'at the same millisecond as' : `${formatGap(behindMs)} before`;
  throw new TierwatchError(
    'CLOCK_BEHIND',
    `Run ${runId} of account ${accountId} was observed at ${observedAt}, ${by} the account's last observation (${lastObservedAt}); ` +
      'nothing was stored. Either this clock has gone back (fix it; collection resumes once it passes that instant), ' +
      `or the history was stamped by a clock running ahead: then \`tierwatch rewind --after INSTANT\` discards the runs after INSTANT.`,
    { details: { runId, accountId, observedAt, lastObservedAt, behindMs } },
  );
}

/**
 * The tier count a new sweep is compared with: the largest of the account's successful sweeps in the
 * window (oldest first) — except that a sweep which itself lost more than `ratio` of that count was
 * stored only because an operator raised the ratio for it, and becomes the new reference. Without
 * that, one accepted delisting would refuse every sweep for the rest of the window.
 */
export function erosionBaseline(recentCounts: readonly number[], ratio: number): number {
  let baseline = 0;
  for (const count of recentCounts) {
    if (baseline > 0 && (baseline - count) / baseline > ratio) baseline = count;
    else baseline = Math.max(baseline, count);
  }
  return baseline;
}

/**
 * Throws MASS_REMOVAL when a sweep of `tiers` tiers has lost more than `maxRemovalRatio` of the
 * account's reference count over the window (see erosionBaseline), so 20 → 11 → 6 → 3 is caught at 6
 * although no single step removed more than half of the step before.
 */
export function checkErosion(input: {
  accountId: string;
  tiers: number;
  recentCounts: readonly number[];
  maxRemovalRatio: number;
}): void {
  const { accountId, tiers, recentCounts, maxRemovalRatio } = input;
  const baseline = erosionBaseline(recentCounts, maxRemovalRatio);
  if (baseline === 0 || (baseline - tiers) / baseline <= maxRemovalRatio) return;
  throw new TierwatchError(
    'MASS_REMOVAL',
    `The sweep of account ${accountId} finds ${tiers} tiers, ${baseline - tiers} fewer than the ${baseline} of its largest sweep in the last ` +
      `${EROSION_WINDOW_MS / 3_600_000} h (more than ${formatRatio(maxRemovalRatio)} gone); nothing was stored. ` +
      'If the exchange really delisted them, raise TIERWATCH_MAX_REMOVAL_RATIO for one run.',
    { details: { accountId, tiers, largestRecent: baseline, windowMs: EROSION_WINDOW_MS, maxRemovalRatio } },
  );
}

/**
 * The guards a sweep must pass before anything is written; pure, so more can be added beside it.
 * Throws MASS_REMOVAL when more than maxRemovalRatio of the account's current tiers would go.
 */
export function checkSweepGuards(input: {
  accountId: string;
  current: number;
  diff: TierDiff;
  maxRemovalRatio: number;
}): void {
  const { accountId, current, diff, maxRemovalRatio } = input;
  if (current > 0 && diff.removed.length / current > maxRemovalRatio) {
    throw new TierwatchError(
      'MASS_REMOVAL',
      `The sweep of account ${accountId} would remove ${diff.removed.length} of its ${current} current tiers ` +
        `(more than ${formatRatio(maxRemovalRatio)}); nothing was stored. If the exchange really delisted them, ` +
        'raise TIERWATCH_MAX_REMOVAL_RATIO for one run.',
      { details: { accountId, removed: diff.removed.length, current, maxRemovalRatio } },
    );
  }
}

function formatRatio(ratio: number): string {
  return `${Math.round(ratio * 1000) / 10}%`;
}
