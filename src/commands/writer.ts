/**
 * Opens the database for writing (migrating it first) and takes the single-writer lock, for the
 * commands that record sweeps; closes both whatever happens, so the WAL is checkpointed and no
 * handle or lock outlives the command.
 */
import { openDatabase, type StoreDb } from '../store/db.ts';
import { HistoryStore } from '../store/history-store.ts';
import { acquireWriterLock } from '../store/writer-lock.ts';
import { crashPoint } from '../collect/crash-points.ts';
import type { Logger } from '../log.ts';

export interface Writer {
  db: StoreDb;
  store: HistoryStore;
  close(): void;
}

/** Throws DB_LOCKED (naming the holder) when another process writes to `dbPath`. */
export function openWriter(dbPath: string, command: string, logger: Logger): Writer {
  const db = openDatabase(dbPath, { logger });
  let lock;
  try {
    lock = acquireWriterLock(dbPath, command);
  } catch (error) {
    db.close();
    throw error;
  }
  return {
    db,
    store: new HistoryStore(db, { logger, beforeCommit: () => crashPoint('in-transaction') }),
    close() {
      try {
        db.close();
      } finally {
        lock.release();
      }
    },
  };
}

export async function withWriter<T>(dbPath: string, command: string, logger: Logger, work: (writer: Writer) => Promise<T>): Promise<T> {
  const writer = openWriter(dbPath, command, logger);
  try {
    return await work(writer);
  } finally {
    writer.close();
  }
}
