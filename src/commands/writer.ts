/**
 * Opens the database for writing (migrating it first) for the commands that record sweeps, and
 * closes it whatever happens, so the WAL is checkpointed and no handle outlives the command.
 */
import { openDatabase } from '../store/db.ts';
import { HistoryStore } from '../store/history-store.ts';
import type { SweepDeps } from '../collect/sweep.ts';
import type { CommandContext } from './context.ts';

export async function withWriter<T>(context: CommandContext, work: (deps: SweepDeps & { store: HistoryStore }) => Promise<T>): Promise<T> {
  const config = context.config();
  const logger = context.logger();
  const db = openDatabase(config.dbPath, { logger });
  try {
    const store = new HistoryStore(db, { logger });
    return await work({ store, logger });
  } finally {
    db.close();
  }
}
