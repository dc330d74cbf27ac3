/**
 * `tierwatch rewind --after T [--account ID] [--dry-run]`: the way back from a history stamped in the
 * future. Discards the successful runs observed after T — their changes deleted, the versions they
 * opened and closed put back — under the writer lock, and records each in the ledger (status
 * `failed`, code REWOUND). Exit 2 when T is not a time or nothing would be discarded.
 *
 * On Postgres it takes the collectors' leadership lease for its one transaction (store/pg/rewind.ts),
 * and is refused with DB_LEADER_ELSEWHERE while a daemon leads.
 */
import { existsSync } from 'node:fs';
import { TierwatchError } from '../errors.ts';
import type { RewindInput, RewindResult } from '../store/rewind.ts';
import type { Logger } from '../log.ts';
import { TIME_FORMS } from '../query/time.ts';
import type { CommandContext, CommandSpec } from './context.ts';

export const rewindCommand: CommandSpec = {
  name: 'rewind',
  summary: 'discard the runs observed after a point in time (the way back from a clock that ran ahead)',
  flags: ['db'],
  configure(command) {
    command
      .requiredOption('--after <time>', `discard the successful runs observed after this: ${TIME_FORMS}`)
      .option('--account <id>', 'only this account (default every account in the history)')
      .option('--dry-run', 'print what would be discarded, change nothing')
      .option('--force', 'also discard runs observed in the past (by default only runs stamped in the future are)');
  },
  async run(context) {
    const { parseTimeArgument, resolveTime } = await import('../query/time.ts');
    const { withWriter } = await import('./writer.ts');
    const { rewindHistory } = await import('../store/rewind.ts');
    const { options } = context;
    const now = new Date();
    const config = context.config();
    // Parsed before anything is opened: a bad instant changes nothing.
    const spec = parseTimeArgument(String(options.after), now, '--after');
    const accountId = typeof options.account === 'string' ? options.account : null;
    const logger = context.logger();
    const inputAt = (after: string): RewindInput => ({
      after,
      accountId,
      now,
      command: `tierwatch rewind --after ${after}${accountId === null ? '' : ` --account ${accountId}`}`,
      dryRun: options.dryRun === true,
      force: options.force === true,
    });
    const target = config.database;
    if (target.kind === 'postgres') {
      const { rewindPostgresAt } = await import('../store/pg/rewind.ts');
      const { after, result } = await rewindPostgresAt(target.url, config.leadership.lease, spec, inputAt);
      return report(context, logger, result, after, accountId);
    }
    const dbPath = target.path;
    if (!existsSync(dbPath)) {
      throw new TierwatchError('USAGE', `There is no database at ${dbPath} to rewind (see --db / TIERWATCH_DB).`);
    }
    return withWriter(dbPath, 'tierwatch rewind', logger, ({ db }) => {
      const lookup = db.sqlite.prepare<[number], { observed_at: string | null; status: string }>(
        'SELECT observed_at, status FROM run_ledger WHERE run_id = ?',
      );
      const after = resolveTime(spec, (runId) => lookup.get(runId), '--after');
      return report(context, logger, rewindHistory(db, inputAt(after)), after, accountId);
    });
  },
};

/** Prints (and logs) what was, or would be, discarded; both backends alike. */
function report(
  context: CommandContext,
  logger: Logger,
  result: RewindResult,
  after: string,
  accountId: string | null,
): number {
  const verb = result.dryRun ? 'would discard' : 'discarded';
  for (const run of result.runs) {
    context.print(
      `${verb} run ${run.run_id}: account ${run.account_id}, observed at ${run.observed_at}, ${run.tiers ?? 0} tiers, ${run.changes ?? 0} changes`,
    );
  }
  if (result.dryRun) {
    context.print(
      `dry run: ${result.runs.length} run(s) observed after ${after} would be discarded; nothing was changed`,
    );
  } else {
    context.print(
      `${result.runs.length} run(s) observed after ${after} discarded: ${result.changesDeleted} change(s) and ` +
        `${result.versionsDeleted} version(s) deleted, ${result.versionsReopened} version(s) reopened`,
    );
    logger.warn(
      { after, account_id: accountId, runs: result.runs.map((run) => run.run_id), ...counts(result) },
      'history rewound',
    );
  }
  return 0;
}

function counts(result: { changesDeleted: number; versionsDeleted: number; versionsReopened: number }) {
  return {
    changes_deleted: result.changesDeleted,
    versions_deleted: result.versionsDeleted,
    versions_reopened: result.versionsReopened,
  };
}
