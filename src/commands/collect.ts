/**
 * `tierwatch collect`: one sweep of every configured account now. Exit 0 when every account's
 * sweep succeeded, 1 when any failed (each is in the ledger), 2 for bad usage or configuration.
 *
 * With webhooks configured, each run's notification is written in its sweep transaction, as in the
 * daemon, and one delivery pass (bounded by the webhook timeout and retries) runs before the
 * command ends; what it cannot deliver stays in the outbox for the next collect or daemon start.
 */
import { requireSqlitePath } from '../config.ts';
import type { SweepResult } from '../collect/sweep.ts';
import { escapeControl } from '../output/terminal-text.ts';
import type { CommandSpec } from './context.ts';

/** The one line a person at a terminal reads after a sweep: "sweep ok: account primary, 60 tiers, 3 changes, run 12". */
export function sweepResultLine(result: SweepResult): string {
  if (result.ok) {
    const changes = result.changes.length;
    return `sweep ok: account ${result.accountId}, ${result.tiers} tiers, ${changes} change${changes === 1 ? '' : 's'}, run ${result.runId}`;
  }
  // The message may quote the exchange: escaped, like every exchange string on a terminal.
  const status = result.error.code === 'ABORTED' ? 'aborted' : 'failed';
  return `sweep ${status}: account ${result.accountId}, ${result.error.code}: ${escapeControl(result.error.message)}, run ${result.runId}`;
}

export const collectCommand: CommandSpec = {
  name: 'collect',
  summary: 'sweep every configured account once now and record the result',
  flags: ['db', 'exchange'],
  async run(context) {
    // Loaded here, not at the top: the collector (WebSocket client, SQLite) is no other command's cost.
    const { checkSecretFiles } = await import('../config.ts');
    const { sweepAll } = await import('../collect/sweep.ts');
    const { Alerting } = await import('../alerts/alerting.ts');
    const { withWriter } = await import('./writer.ts');
    const config = context.config();
    checkSecretFiles(config);
    const logger = context.logger();
    const report = (results: SweepResult[]): number => {
      // On a terminal the logs scroll by; the result is the last thing said, one line per account.
      if (context.io.stdoutIsTTY) for (const result of results) context.print(sweepResultLine(result));
      return results.every((result) => result.ok) && results.length === config.accountIds.length ? 0 : 1;
    };
    if (config.database.kind === 'postgres') {
      // Only the holder of the leadership lease may sweep: DB_LEADER_ELSEWHERE when a daemon leads.
      const { collectOnPostgres } = await import('../collect/pg-collector.ts');
      return report(await collectOnPostgres(config, config.database.url, logger, context.io.signal));
    }
    return withWriter(requireSqlitePath(config.database), 'tierwatch collect', logger, async ({ db, store }) => {
      store.markAbandonedRuns(new Date());
      const alerting = new Alerting(config, { db, store, logger });
      // One delivery pass, after the sweeps: leftovers of earlier runs first, then this run's, in order.
      alerting.start({ kick: false });
      try {
        const results = await sweepAll(config, { store, logger }, context.io.signal);
        await alerting.flush();
        return report(results);
      } finally {
        await alerting.stop();
      }
    });
  },
};
