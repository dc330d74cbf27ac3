/**
 * `tierwatch health`: exit 0 when every configured account's last successful sweep is recent
 * enough, 1 with a one-line reason otherwise. The Docker HEALTHCHECK runs it.
 */
import { requireSqlitePath } from '../config.ts';
import { existsSync } from 'node:fs';
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
    const { openDatabase } = await import('../store/db.ts');
    const config = context.config();
    const dbPath = requireSqlitePath(config.database);
    const maxAgeMs =
      durationOption(context.options.maxAge, '--max-age', { maxMs: 3650 * 86_400_000 }) ?? healthMaxAgeMs(config);
    if (!existsSync(dbPath)) {
      context.print(`unhealthy: no database at ${dbPath} yet`);
      return 1;
    }
    const db = openDatabase(dbPath, { readonly: true });
    try {
      const verdict = judgeHealth(accountHealth(db, config.accountIds), maxAgeMs, new Date());
      context.print(verdict.healthy ? `healthy: ${verdict.summary}` : `unhealthy: ${verdict.reason}`);
      return verdict.healthy ? 0 : 1;
    } finally {
      db.close();
    }
  },
};
