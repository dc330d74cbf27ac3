/**
 * `tierwatch health`: exit 0 when every configured account's last successful sweep is recent
 * enough, 1 with a one-line reason otherwise. The Docker HEALTHCHECK runs it.
 *
 * On Postgres it judges the shared history (whichever daemon leads), with the same verdict lines;
 * a server it cannot reach or a database not migrated is `unhealthy:` too (exit 1), not an error:
 * a health check's caller wants one answer, and the line says why.
 */
import { existsSync } from 'node:fs';
import { isTierwatchError } from '../errors.ts';
import type { AccountHealth } from '../collect/health.ts';
import { durationOption } from './options.ts';
import type { CommandSpec } from './context.ts';

export const healthCommand: CommandSpec = {
  name: 'health',
  summary: 'exit 0 when every account was swept recently, 1 with the reason otherwise (the container health check)',
  flags: ['db', 'schedule'],
  configure(command) {
    command
      .option('--accounts <ids>', 'accounts to judge (env QFEX_ACCOUNT_IDS, default primary)')
      .option(
        '--max-age <duration>',
        'oldest acceptable last success (env TIERWATCH_HEALTH_MAX_AGE; default twice the longest gap of the schedule, at least 1m)',
      );
  },
  async run(context) {
    // Loaded here, not at the top: the scheduler and SQLite are no other command's cost.
    const { accountHealth, healthMaxAgeMs, judgeHealth } = await import('../collect/health.ts');
    const config = context.config();
    const maxAgeMs =
      durationOption(context.options.maxAge, '--max-age', { maxMs: 3650 * 86_400_000 }) ?? healthMaxAgeMs(config);
    let accounts: AccountHealth[];
    const target = config.database;
    if (target.kind === 'postgres') {
      const { readPgAccountHealth } = await import('../collect/pg-health.ts');
      try {
        accounts = await readPgAccountHealth(target.url.reveal(), config.accountIds);
      } catch (error) {
        if (!isTierwatchError(error)) throw error;
        // The message names the database by its printable form (read-session.ts), never its password.
        context.print(`unhealthy: ${error.message}`);
        return 1;
      }
    } else {
      if (!existsSync(target.path)) {
        context.print(`unhealthy: no database at ${target.path} yet`);
        return 1;
      }
      const { openDatabase } = await import('../store/db.ts');
      const db = openDatabase(target.path, { readonly: true });
      try {
        accounts = accountHealth(db, config.accountIds);
      } finally {
        db.close();
      }
    }
    const verdict = judgeHealth(accounts, maxAgeMs, new Date());
    context.print(verdict.healthy ? `healthy: ${verdict.summary}` : `unhealthy: ${verdict.reason}`);
    return verdict.healthy ? 0 : 1;
  },
};
