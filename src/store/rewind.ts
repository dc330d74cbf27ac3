/**
 * Rewinding the history: the way back from runs stamped by a clock that ran ahead. Once one sweep is
 * stored at, say, 2051, every later sweep fails with CLOCK_BEHIND (a version cannot start before
 * the one it closes); rewinding discards the successful runs observed after an instant and puts the
 * tier history back as it was at that instant, so collection resumes.
 *
 * The versions are the only record of the changes (the feed is derived from them), so for each
 * account, in one transaction: the versions the discarded runs opened (valid_from after the instant)
 * are deleted, and the versions they closed (valid_to after it) are reopened. A deleted version's
 * successors started later still, so they are deleted too and no prev_version_id is left pointing at
 * nothing; a reopened version's successor is among the deleted, so it has none again. Each discarded
 * run's ledger row stays — marked `failed` with the code REWOUND and a message saying when and by
 * what it was discarded, no longer a baseline — so the ledger still tells what happened. The caller
 * holds the single-writer lock (no sweep can run meanwhile).
 */
import type Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';
import type { StoreDb } from './db.ts';
import { toStoreError } from './sqlite-errors.ts';

export interface RewindInput {
  /** ISO instant: successful runs observed strictly after it are discarded. */
  after: string;
  /** One account, or null for every account in the history. */
  accountId: string | null;
  /** When the rewind happens (recorded in the discarded runs' messages). */
  now: Date;
  /** The command line, as recorded in the ledger. */
  command: string;
  /** Report what would be discarded, change nothing. */
  dryRun?: boolean;
  /** Also discard runs observed at or before `now` (real history, not a clock's mistake). */
  force?: boolean;
}

export interface DiscardedRun {
  run_id: number;
  account_id: string;
  observed_at: string;
  tiers: number | null;
  changes: number | null;
}

export interface RewindResult {
  runs: DiscardedRun[];
  changesDeleted: number;
  versionsDeleted: number;
  versionsReopened: number;
  dryRun: boolean;
}

/**
 * Discards the successful runs observed after `input.after` (see the module comment). Throws USAGE
 * (and changes nothing) when there is no such run; DB_WRITE_FAILED / DB_LOCKED from SQLite.
 */
export function rewindHistory(db: StoreDb, input: RewindInput): RewindResult {
  const sqlite = db.sqlite;
  try {
    return sqlite.transaction(() => rewindInTransaction(sqlite, input)).immediate();
  } catch (error) {
    throw toStoreError(error, `rewinding the history to ${input.after}`);
  }
}

function rewindInTransaction(sqlite: Database.Database, input: RewindInput): RewindResult {
  const { after, accountId } = input;
  const runs = sqlite
    .prepare<[string, string | null, string | null], DiscardedRun>(
      `SELECT run_id, account_id, observed_at, tiers, changes FROM run_ledger
        WHERE status = 'ok' AND observed_at > ? AND (? IS NULL OR account_id = ?)
        ORDER BY account_id, observed_at, run_id`,
    )
    .all(after, accountId, accountId);
  if (runs.length === 0) {
    const last = sqlite
      .prepare<[string | null, string | null], { at: string | null }>(
        `SELECT max(observed_at) AS at FROM run_ledger WHERE status = 'ok' AND (? IS NULL OR account_id = ?)`,
      )
      .get(accountId, accountId)?.at;
    throw nothingToDiscard(input, last ?? null);
  }
  const result: RewindResult = {
    runs,
    changesDeleted: 0,
    versionsDeleted: 0,
    versionsReopened: 0,
    dryRun: input.dryRun === true,
  };
  if (input.dryRun === true) return result;
  refusePastRuns(runs, input);

  // tier_version keeps epoch ms; the ledger's observed_at is ISO (compared as text above).
  const afterMs = Date.parse(after);
  // The change rows the feed derives for the account after the instant: what the rewind takes away.
  const countChanges = sqlite
    .prepare<[string, number], number>('SELECT count(*) FROM tier_change_feed WHERE account_id = ? AND observed_ms > ?')
    .pluck();
  const deleteOpened = sqlite.prepare<[string, number]>(
    'DELETE FROM tier_version WHERE account_id = ? AND valid_from > ?',
  );
  // What a discarded run closed was open at `after`: it becomes the current version again. Deleted
  // first, so no identity ever has two open versions.
  const reopen = sqlite.prepare<[string, number]>(
    'UPDATE tier_version SET valid_to = NULL WHERE account_id = ? AND valid_to > ?',
  );
  const markRun = sqlite.prepare<[string, number]>(
    `UPDATE run_ledger SET status = 'failed', error_code = 'REWOUND', error_message = ?, baseline = 0 WHERE run_id = ? AND status = 'ok'`,
  );
  const message = discardedMessage(input);
  const accounts = new Set(runs.map((run) => run.account_id));
  for (const account of accounts) result.changesDeleted += countChanges.get(account, afterMs) ?? 0;
  for (const run of runs) {
    if (markRun.run(message, run.run_id).changes !== 1) {
      throw new TierwatchError('INTERNAL', `run ${run.run_id} was no longer ok`);
    }
  }
  for (const account of accounts) {
    result.versionsDeleted += deleteOpened.run(account, afterMs).changes;
    result.versionsReopened += reopen.run(account, afterMs).changes;
  }
  return result;
}

/** USAGE: no successful run after the instant (`last`: the account's last one, if any). */
export function nothingToDiscard(input: RewindInput, last: string | null): TierwatchError {
  const whose = input.accountId === null ? 'any account' : `account ${input.accountId}`;
  return new TierwatchError(
    'USAGE',
    `Nothing to discard: no successful run of ${whose} was observed after ${input.after}` +
      (last === null ? ' (there is none at all).' : ` (the last one was observed at ${last}).`),
  );
}

/**
 * Runs stamped in the future are what rewinding is for; past ones are real history, and an
 * instant mistyped (7d for a week ahead) must not discard a week of it without being asked.
 */
export function refusePastRuns(runs: readonly DiscardedRun[], input: RewindInput): void {
  const nowIso = input.now.toISOString();
  const past = runs.filter((run) => run.observed_at <= nowIso);
  if (past.length > 0 && input.force !== true) {
    throw new TierwatchError(
      'USAGE',
      `${past.length} of the ${runs.length} run(s) observed after ${input.after} are not in the future (the latest at ${past.at(-1)!.observed_at}): ` +
        'they are real history. Check with --dry-run, then add --force to discard them too; nothing was changed.',
    );
  }
}

/** What a discarded run's ledger row says about it. */
export function discardedMessage(input: RewindInput): string {
  return (
    `discarded at ${input.now.toISOString()} by \`${input.command}\`: observed after ${input.after}; ` +
    'its changes were deleted and the versions it opened and closed were put back'
  );
}
