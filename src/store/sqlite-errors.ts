/**
 * Maps what better-sqlite3 throws to tierwatch's error codes, wherever SQLite is used: the store
 * (opens and writes) and, through `sqliteErrorToTierwatch`, the CLI's one error boundary, so a
 * query command that meets a corrupt page says DB_CORRUPT instead of "this is a bug". A
 * TierwatchError passes through unchanged; anything unrecognised is a bug (INTERNAL).
 */
import fs from 'node:fs';
import path from 'node:path';
import { TierwatchError, type ErrorCode } from '../errors.ts';

/** What a SQLite result code means for the user, by its primary code (extended codes share it). */
const WRITE_FAILURES: Record<string, string> = {
  SQLITE_READONLY: 'the database file or its directory is read-only',
  SQLITE_IOERR: 'the disk reported an I/O error',
  SQLITE_CANTOPEN: 'the database file could not be opened',
  SQLITE_PERM: 'permission denied',
  SQLITE_NOMEM: 'SQLite ran out of memory',
};

const CORRUPTION = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);
const LOCK_FAILURES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED']);
/** I/O errors a full disk or a file size limit (EFBIG, which SQLite reports as an I/O error) causes. */
const GROWTH_FAILURES = new Set([
  'SQLITE_IOERR_WRITE',
  'SQLITE_IOERR_SHMSIZE',
  'SQLITE_IOERR_TRUNCATE',
  'SQLITE_IOERR_FSYNC',
  'SQLITE_IOERR',
]);
/** Below this much free space an I/O error on write is taken for a full disk. */
const NEARLY_FULL_BYTES = 4 * 1024 * 1024;

/** The folders of the databases this process opened: where a full disk would show. */
const databaseFolders = new Set<string>();

/** Records `dbPath`'s folder, so that an I/O error can be checked against its free space. */
export function noteDatabasePath(dbPath: string): void {
  databaseFolders.add(path.dirname(path.resolve(dbPath)));
}

/** The primary result code of a better-sqlite3 error ('SQLITE_IOERR_WRITE' → 'SQLITE_IOERR'), or null. */
export function sqliteErrorCode(error: unknown): string | null {
  const code = extendedCode(error);
  if (code === null) return null;
  const match = /^SQLITE_[A-Z]+/.exec(code);
  return match ? match[0] : code;
}

function extendedCode(error: unknown): string | null {
  if (!(error instanceof Error) || error.name !== 'SqliteError') return null;
  const code = (error as Error & { code?: unknown }).code;
  return typeof code === 'string' ? code : null;
}

/** The process's file size limit (`ulimit -f`) in bytes, or null when unlimited or unknown (not Linux). */
function fileSizeLimit(): number | null {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((text) => text.startsWith('Max file size'));
    const soft = line?.slice('Max file size'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? null : Number(soft);
  } catch {
    return null;
  }
}

/** Why an I/O error on write is a full disk, or null when nothing says so. */
function fullBecause(): string | null {
  if (fileSizeLimit() !== null) return `the file size limit (ulimit -f, ${fileSizeLimit()} bytes) is reached`;
  for (const folder of databaseFolders) {
    try {
      const stat = fs.statfsSync(folder);
      if (stat.bavail * stat.bsize < NEARLY_FULL_BYTES) return `the disk holding ${folder} is full`;
    } catch {
      /* the folder may be gone: not evidence of a full disk */
    }
  }
  return null;
}

function make(code: ErrorCode, message: string, error: unknown, sqliteCode: string, retryable = false): TierwatchError {
  return new TierwatchError(code, message, { cause: error, retryable, details: { sqliteCode } });
}

/**
 * Converts an error thrown while doing `action` (a phrase such as "storing run 42") into a
 * TierwatchError: DISK_FULL for a full disk or database size limit (and for an I/O error on write
 * when the disk is nearly full or a file size limit is set), DB_CORRUPT for a damaged file,
 * DB_WRITE_FAILED for a read-only or failing disk, DB_LOCKED when another connection held the write
 * lock past the busy timeout, INTERNAL for anything else.
 */
export function toStoreError(error: unknown, action: string): TierwatchError {
  if (error instanceof TierwatchError) return error;
  return (
    sqliteErrorToTierwatch(error, action) ??
    new TierwatchError('INTERNAL', `${action} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    })
  );
}

/** The TierwatchError a SQLite error stands for, or null when `error` is not one tierwatch expects. */
export function sqliteErrorToTierwatch(error: unknown, action: string): TierwatchError | null {
  const code = sqliteErrorCode(error);
  if (code === null) return null;
  const extended = extendedCode(error)!;
  const detail = (error as Error).message;
  if (code === 'SQLITE_FULL') {
    return make(
      'DISK_FULL',
      `${action} failed: the disk (or the database size limit) is full (${extended}: ${detail}). Free some space; nothing was half-written.`,
      error,
      extended,
    );
  }
  if (GROWTH_FAILURES.has(extended)) {
    const why = fullBecause();
    if (why !== null) {
      return make(
        'DISK_FULL',
        `${action} failed: ${why} (${extended}: ${detail}). Free some space; nothing was half-written.`,
        error,
        extended,
      );
    }
  }
  if (CORRUPTION.has(code)) {
    return make(
      'DB_CORRUPT',
      `${action} failed: the database file is corrupt or not a SQLite database (${extended}: ${detail}). Restore it from a backup.`,
      error,
      extended,
    );
  }
  if (code in WRITE_FAILURES) {
    return make(
      'DB_WRITE_FAILED',
      `${action} failed: ${WRITE_FAILURES[code]} (${extended}: ${detail})`,
      error,
      extended,
    );
  }
  if (LOCK_FAILURES.has(code)) {
    return make(
      'DB_LOCKED',
      `${action} failed: another connection kept the database locked past the busy timeout (${code})`,
      error,
      extended,
      true,
    );
  }
  return null;
}
