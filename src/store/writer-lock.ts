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
 *
 * The description is committed just before the lock is taken for good (two steps, see below), so a
 * refused process can look in the gap between them, or while the winner's first step is still
 * uncommitted, and find no row, no table, or the row of an earlier holder. It therefore reads
 * until it finds a row that is not its own and not that of a process known to be dead, for up to
 * HOLDER_READ_PATIENCE_MS; only then does it fall back to "another tierwatch process".
 */
import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';
import { openSqlite } from './sqlite.ts';

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

/** How long a refused process keeps looking for the winner's description (it commits within milliseconds). */
export const HOLDER_READ_PATIENCE_MS = 2000;
const HOLDER_READ_PAUSE_MS = 10;
/** How long the first step's COMMIT waits for contenders' reads of the description to end. */
const COMMIT_PATIENCE_MS = 1000;

function readHolderOnce(lock: Database.Database): Holder | null {
  try {
    return (lock.prepare('SELECT pid, host, command, since FROM holder LIMIT 1').get() as Holder | undefined) ?? null;
  } catch {
    return null; // no table yet, or the winner is committing (busy): look again
  }
}

/**
 * A description that cannot be the current holder's: the one this attempt wrote (it lost the lock
 * after its first step), or a dead process's on this host.
 */
function isStale(holder: Holder, mine: Holder | null): boolean {
  if (holder.host !== hostname()) return false;
  if (mine !== null && holder.pid === mine.pid && holder.command === mine.command && holder.since === mine.since) {
    return true;
  }
  if (holder.pid === process.pid) return false; // another connection of this process (tests) holds it
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Reads the lock holder's description, waiting out the winner's gap between its two steps (see the module comment). */
function readHolder(lock: Database.Database, mine: Holder | null): Holder | null {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + HOLDER_READ_PATIENCE_MS;
  for (;;) {
    const last = readHolderOnce(lock);
    if (last !== null && !isStale(last, mine)) return last;
    if (Date.now() >= deadline) return null; // a lock file another version made: the refusal still stands
    Atomics.wait(pause, 0, 0, HOLDER_READ_PAUSE_MS);
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
  const lock = openSqlite(path, { timeout: 0 });
  let me: Holder | null = null;
  try {
    lock.pragma('journal_mode = DELETE');
    lock.exec(
      'CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, host TEXT NOT NULL, command TEXT NOT NULL, since TEXT NOT NULL)',
    );
    me = { pid: process.pid, host: hostname(), command, since: now().toISOString() };
    // Step 1: claim the lock and record who we are. COMMIT makes the description readable to others.
    // Step 2: claim it again and keep the transaction open for the life of the process. Between the
    // two, another process may win; then we refuse, as we should, and the description is theirs
    // once they commit theirs.
    lock.exec('BEGIN IMMEDIATE');
    lock.prepare('DELETE FROM holder').run();
    lock
      .prepare('INSERT INTO holder (pid, host, command, since) VALUES (?, ?, ?, ?)')
      .run(me.pid, me.host, me.command, me.since);
    // A refused contender reading the description holds a shared lock for an instant; the COMMIT
    // waits that out instead of losing to it (a loser must never make the winner lose too).
    lock.pragma(`busy_timeout = ${COMMIT_PATIENCE_MS}`);
    lock.exec('COMMIT');
    lock.pragma('busy_timeout = 0');
    lock.exec('BEGIN IMMEDIATE');
  } catch (error) {
    // Give back whatever this attempt still holds (a COMMIT refused keeps its PENDING lock, which
    // would block every reader, the winner's own steps included) before looking for the holder.
    if (lock.inTransaction) lock.exec('ROLLBACK');
    lock.pragma('busy_timeout = 0');
    const holder = isBusy(error) ? readHolder(lock, me) : null;
    lock.close();
    if (isBusy(error)) {
      throw new TierwatchError(
        'DB_LOCKED',
        `The database ${dbPath} is being written by ${describe(holder)}. Only one writer may run per database; stop it first, or use another TIERWATCH_DB.`,
        {
          details: { holder },
        },
      );
    }
    throw new TierwatchError('DB_WRITE_FAILED', `Cannot create the writer lock ${path}: ${(error as Error).message}`, {
      cause: error,
    });
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
