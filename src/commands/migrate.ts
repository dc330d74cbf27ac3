/**
 * `tierwatch migrate`: applies pending schema migrations (they also run at every start), under the
 * writer lock like every other write, and says how many it applied. On Postgres, under the
 * migration advisory lock (store/pg/migrate.ts) instead.
 */
import { requireSqlitePath } from '../config.ts';
import type { CommandSpec } from './context.ts';

export const migrateCommand: CommandSpec = {
  name: 'migrate',
  summary: 'create the database or bring its schema up to date (also done at every start)',
  flags: ['db'],
  async run(context) {
    const { openLockedDatabase } = await import('./writer.ts');
    const config = context.config();
    if (config.database.kind === 'postgres') {
      // Serialised by an advisory lock: several daemons (or migrates) may start together.
      const { migratePostgres } = await import('../store/pg/migrate.ts');
      const { url } = config.database;
      const { applied } = await migratePostgres(url.reveal());
      context.print(
        applied === 0
          ? `database ${url.display} is up to date (nothing to apply)`
          : `database ${url.display}: applied ${applied} migration${applied === 1 ? '' : 's'}; it is now up to date`,
      );
      return 0;
    }
    const dbPath = requireSqlitePath(config.database);
    const { db, lock } = openLockedDatabase(dbPath, 'tierwatch migrate', context.logger());
    const applied = db.migrationsApplied;
    try {
      db.close();
    } finally {
      lock.release();
    }
    context.print(
      applied === 0
        ? `database ${dbPath} is up to date (nothing to apply)`
        : `database ${dbPath}: applied ${applied} migration${applied === 1 ? '' : 's'}; it is now up to date`,
    );
    return 0;
  },
};
