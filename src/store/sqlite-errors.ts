/**
 * Maps what better-sqlite3 throws to tierwatch's error codes, at the boundary where the store writes
 * (and opens). A TierwatchError passes through unchanged; anything unrecognised is a bug (INTERNAL).
 */
import { TierwatchError } from '../errors.ts';

/** What a SQLite result code means for the user, by its primary code (extended codes share it). */
const WRITE_FAILURES: Record<string, string> = {
  SQLITE_FULL: 'the disk (or the database size limit) is full',
  SQLITE_READONLY: 'the database file or its directory is read-only',
  SQLITE_CORRUPT: 'the database file is corrupt',
  SQLITE_NOTADB: 'the file is not a SQLite database',
  SQLITE_IOERR: 'the disk reported an I/O error',
  SQLITE_CANTOPEN: 'the database file could not be opened',
  SQLITE_PERM: 'permission denied',
  SQLITE_NOMEM: 'SQLite ran out of memory',
};

const LOCK_FAILURES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED']);

/** The primary result code of a better-sqlite3 error ('SQLITE_IOERR_WRITE' → 'SQLITE_IOERR'), or null. */
export function sqliteErrorCode(error: unknown): string | null {
  if (!(error instanceof Error) || error.name !== 'SqliteError') return null;
  const code = (error as Error & { code?: unknown }).code;
  if (typeof code !== 'string') return null;
  const match = /^SQLITE_[A-Z]+/.exec(code);
  return match ? match[0] : code;
}

/**
 * Converts an error thrown while the store was doing `action` (a phrase such as "storing run 42")
 * into a TierwatchError: DB_WRITE_FAILED for a full, read-only, corrupt or failing disk, DB_LOCKED
 * when another connection held the write lock past the busy timeout, INTERNAL for anything else.
 */
export function toStoreError(error: unknown, action: string): TierwatchError {
  if (error instanceof TierwatchError) return error;
  const code = sqliteErrorCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (code !== null && code in WRITE_FAILURES) {
    return new TierwatchError('DB_WRITE_FAILED', `${action} failed: ${WRITE_FAILURES[code]} (${code}: ${detail})`, {
      cause: error,
      details: { sqliteCode: code },
    });
  }
  if (code !== null && LOCK_FAILURES.has(code)) {
    return new TierwatchError(
      'DB_LOCKED',
      `${action} failed: another connection kept the database locked past the busy timeout (${code})`,
      { cause: error, retryable: true, details: { sqliteCode: code } },
    );
  }
  return new TierwatchError('INTERNAL', `${action} failed: ${detail}`, { cause: error });
}
