/**
 * Opens the database for writing under the single-writer lock, for the commands that write (the
 * collectors, `demo`, `migrate`); closes both whatever happens, so the WAL is checkpointed and no
 * handle or lock outlives the command.
 *
 * The order is the point: what is at the path is checked first (read-only: a foreign or corrupt
 * file is refused untouched), then the lock is taken, and only then is the database created or
 * migrated. A process refused with DB_LOCKED has created and migrated nothing, and two first
 * starts at once give one success and one DB_LOCKED.
 */
import path from 'node:path';
import { ensurePrivateDirectory, inspectDatabaseFile, openDatabase, type StoreDb } from '../store/db.ts';
import { HistoryStore } from '../store/history-store.ts';
import { acquireWriterLock, type WriterLock } from '../store/writer-lock.ts';
import { crashPoint } from '../collect/crash-points.ts';
import type { Logger } from '../log.ts';

export interface Writer {
  db: StoreDb;
  store: HistoryStore;
  close(): void;
}

export interface OpenWriterOptions {
  /**
   * Runs under the lock, before the database is opened, instead of the check made before the lock:
   * `demo` decides there whether it may replace what is at the path, and removes it.
   */
  beforeOpen?: () => void;
}

/**
 * Takes the writer lock for `dbPath` and opens (creating and migrating) the database under it.
 * Throws DB_LOCKED (naming the holder) when another process writes to it, and whatever
 * openDatabase throws (DB_FOREIGN, DB_CORRUPT, DISK_FULL, …); the lock is released then.
 */
export function openLockedDatabase(
  dbPath: string,
  command: string,
  logger: Logger,
  options: OpenWriterOptions = {},
): { db: StoreDb; lock: WriterLock } {
  if (options.beforeOpen === undefined) inspectDatabaseFile(dbPath);
  ensurePrivateDirectory(path.dirname(path.resolve(dbPath)), () => logger);
  const lock = acquireWriterLock(dbPath, command);
  try {
    options.beforeOpen?.();
    return { db: openDatabase(dbPath, { logger }), lock };
  } catch (error) {
    lock.release();
    throw error;
  }
}

export function openWriter(dbPath: string, command: string, logger: Logger, options: OpenWriterOptions = {}): Writer {
  const { db, lock } = openLockedDatabase(dbPath, command, logger, options);
  const store = new HistoryStore(db, { logger, beforeCommit: () => crashPoint('in-transaction') });
  return {
    db,
    store,
    close() {
      try {
        closeLeftoverRuns(db, store, logger);
        db.close();
      } finally {
        lock.release();
      }
    },
  };
}

/**
 * A run can stay 'running' when even recording its failure failed (a full disk, a locked file).
 * At a clean close this process holds the lock and nothing sweeps any more, so such a run is
 * marked abandoned now, not at the next start. On a full disk the WAL is checkpointed and
 * truncated first, which frees the few bytes the mark needs; if it still fails, the next start
 * marks it.
 */
function closeLeftoverRuns(db: StoreDb, store: HistoryStore, logger: Logger): void {
  try {
    store.markAbandonedRuns(new Date());
  } catch {
    try {
      db.sqlite.pragma('wal_checkpoint(TRUNCATE)');
      store.markAbandonedRuns(new Date());
    } catch (error) {
      logger.warn({ err: error }, 'could not mark the runs left running at close; the next start marks them abandoned');
    }
  }
}

export async function withWriter<T>(
  dbPath: string,
  command: string,
  logger: Logger,
  work: (writer: Writer) => T | Promise<T>,
): Promise<T> {
  const writer = openWriter(dbPath, command, logger);
  try {
    return await work(writer);
  } finally {
    writer.close();
  }
}
