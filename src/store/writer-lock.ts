/**
 * One writer per database. The writer holds an open write transaction (SQLite's RESERVED lock, a
 * POSIX advisory lock underneath) on a companion file `<db>.lock` for as long as it lives. The kernel
 * drops that lock the moment the process dies, even by SIGKILL, and it works across containers that
 * share the volume (they share the kernel). A PID file or a heartbeat row would outlive a killed
 * daemon; this cannot.
 *
 * The lock file also holds a one-row description of its holder. RESERVED still lets others read,
 * so a process that finds the lock taken can say who holds it. The main database is never locked
 * by this, so readers of the history are never blocked.
 */
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';

export interface WriterLock {
  readonly path: string;
  /** Ends the transaction and closes the lock file. Idempotent. */
  release(): void;
}

export interface Holder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

function readHolder(lock: Database.Database): Holder | null {
  try {
    return (lock.prepare('SELECT pid, host, command, since FROM holder LIMIT 1').get() as Holder | undefined) ?? null;
  } catch {
    return null; // a lock file another version made, or one mid-creation: the refusal still stands
  }
}

function describe(holder: Holder | null): string {
  if (holder === null) return 'another tierwatch process';
  return `\`${holder.command}\` (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
}

/**
 * Takes the writer lock for `dbPath` or throws DB_LOCKED naming the holder. Call after the database
 * folder exists. The caller releases it when it closes the database.
 */
export function acquireWriterLock(dbPath: string, command: string, now: () => Date = () => new Date()): WriterLock {
  const path = `${dbPath}.lock`;
  const lock = new Database(path, { timeout: 0 });
  try {
    lock.pragma('journal_mode = DELETE');
    lock.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, host TEXT NOT NULL, command TEXT NOT NULL, since TEXT NOT NULL)');
    const me: Holder = { pid: process.pid, host: hostname(), command, since: now().toISOString() };
    // Step 1: claim the lock and record who we are. COMMIT makes the description readable to others.
    // Step 2: claim it again and keep the transaction open for the life of the process. Between the
    // two, another process may win; then we refuse, as we should, and the description is theirs
    // once they commit theirs.
    lock.exec('BEGIN IMMEDIATE');
    lock.prepare('DELETE FROM holder').run();
    lock.prepare('INSERT INTO holder (pid, host, command, since) VALUES (?, ?, ?, ?)').run(me.pid, me.host, me.command, me.since);
    lock.exec('COMMIT');
    lock.exec('BEGIN IMMEDIATE');
  } catch (error) {
    const holder = isBusy(error) ? readHolder(lock) : null;
    lock.close();
    if (isBusy(error)) {
      throw new TierwatchError('DB_LOCKED', `The database ${dbPath} is being written by ${describe(holder)}. Only one writer may run per database; stop it first, or use another TIERWATCH_DB.`, {
        details: { holder },
      });
    }
    throw new TierwatchError('DB_WRITE_FAILED', `Cannot create the writer lock ${path}: ${(error as Error).message}`, { cause: error });
  }
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      try {
        lock.exec('ROLLBACK');
      } finally {
        lock.close();
      }
    },
  };
}
