/** `tierwatch migrate`: applies pending schema migrations (they also run at every start). */
import { openDatabase } from '../store/db.ts';
import type { CommandSpec } from './context.ts';

export const migrateCommand: CommandSpec = {
  name: 'migrate',
  summary: 'create the database or bring its schema up to date (also done at every start)',
  flags: ['db'],
  async run(context) {
    const config = context.config();
    const db = openDatabase(config.dbPath, { logger: context.logger() });
    const applied = db.migrationsApplied;
    db.close();
    context.print(applied === 0 ? `database ${config.dbPath} is up to date` : `database ${config.dbPath}: applied ${applied} migration${applied === 1 ? '' : 's'}`);
    return 0;
  },
};
