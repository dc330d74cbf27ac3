/**
 * Reading a database file without changing it: its header, a read-only connection that needs no
 * write access (falling back to `immutable`), SQLite's structural check, and the two questions asked
 * before anything is written — is this tierwatch's, and what does it hold.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';
import { classifyDatabase, foreignDatabaseError, readHeader, type DbHeader } from './db-file.ts';
import { sqliteErrorCode, toStoreError } from './sqlite-errors.ts';
import { openSqlite } from './sqlite.ts';

/**
 * Checks what is at `dbPath` without writing anything and without creating a file: the header
 * (DB_CORRUPT), whether it is another program's database (DB_FOREIGN). Returns null when there is no
 * file. Writers call it before taking the lock, so a refused open leaves nothing behind.
 */
export function inspectDatabaseFile(dbPath: string): DbHeader | null {
  if (!fs.existsSync(dbPath)) return null;
  const header = readHeaderOrThrow(dbPath);
  if (header.empty) return header;
  let sqlite: Database.Database;
  try {
    ({ sqlite } = openForReading(dbPath, header));
  } catch (error) {
    throw toStoreError(error, `reading ${dbPath}`);
  }
  try {
    if (classifyDatabase(sqlite) === 'foreign') throw foreignDatabaseError(dbPath);
  } catch (error) {
    throw toStoreError(error, `reading ${dbPath}`);
  } finally {
    sqlite.close();
  }
  return header;
}

/** What a tierwatch history holds, in a sentence's worth: for refusing to replace it by mistake. */
export interface HistorySummary {
  /** The `meta` row `created_by` (`tierwatch demo` for the demo's own history), or null. */
  createdBy: string | null;
  runs: number;
  endpoint: string | null;
  lastSweep: string | null;
}

/**
 * Summarises the tierwatch history at `dbPath` without writing anything; null when there is no file
 * or it holds no table yet. Throws what inspectDatabaseFile throws (DB_FOREIGN, DB_CORRUPT).
 */
export function summarizeHistory(dbPath: string): HistorySummary | null {
  const header = inspectDatabaseFile(dbPath);
  if (header === null || header.empty) return null;
  const { sqlite } = openForReading(dbPath, header);
  try {
    if (classifyDatabase(sqlite) === 'empty') return null;
    const tables = new Set(
      sqlite.prepare<[], string>("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").pluck().all(),
    );
    const metaValue = (key: string) =>
      tables.has('meta')
        ? (sqlite.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck().get(key) ?? null)
        : null;
    const runs = tables.has('run_ledger')
      ? (sqlite.prepare('SELECT count(*) AS runs, max(started_at) AS last FROM run_ledger').get() as {
          runs: number;
          last: string | null;
        })
      : { runs: 0, last: null };
    return {
      createdBy: metaValue('created_by'),
      runs: runs.runs,
      endpoint: metaValue('endpoint'),
      lastSweep: runs.last,
    };
  } catch (error) {
    throw toStoreError(error, `reading ${dbPath}`);
  } finally {
    sqlite.close();
  }
}

export function readHeaderOrThrow(dbPath: string): DbHeader {
  try {
    return readHeader(dbPath);
  } catch (error) {
    if (error instanceof TierwatchError) throw error;
    throw new TierwatchError(
      'DB_READ_FAILED',
      `Cannot read the database ${dbPath}: ${(error as Error).message}. Check that this user may read the file.`,
      {
        cause: error,
      },
    );
  }
}

/** Throws DB_CORRUPT when SQLite's structural check finds damage (it reads every page). */
export function quickCheck(sqlite: Database.Database, dbPath: string): void {
  const result = sqlite.pragma('quick_check(1)', { simple: true });
  if (result === 'ok') return;
  throw new TierwatchError(
    'DB_CORRUPT',
    `The database ${dbPath} is corrupt (SQLite's quick_check: ${String(result).replace(/\s*\n\s*/g, ' ')}). Restore it from a backup; \`sqlite3 ${dbPath} .recover\` may save what is left.`,
    {
      details: { db: dbPath },
    },
  );
}

/**
 * A read-only connection that needs no write access. A WAL database needs its `-shm` file; when
 * that cannot be created (a read-only folder or mount) and no WAL is pending, the file alone is the
 * whole database and is opened `immutable` (SQLite then takes no locks and needs no -shm). With a
 * WAL holding writes and no -shm to read it through, it refuses and says what to do.
 */
export function openForReading(dbPath: string, header: DbHeader): { sqlite: Database.Database; immutable: boolean } {
  const sqlite = openSqlite(dbPath, { readonly: true, fileMustExist: true });
  try {
    sqlite.prepare('SELECT count(*) FROM sqlite_master').get(); // a WAL database opens its -shm here
    return { sqlite, immutable: false };
  } catch (error) {
    sqlite.close();
    const code = sqliteErrorCode(error);
    if (!header.wal || (code !== 'SQLITE_CANTOPEN' && code !== 'SQLITE_READONLY')) throw error;
    const wal = `${dbPath}-wal`;
    const folder = path.dirname(path.resolve(dbPath));
    const cannot = (why: string, cause: unknown) =>
      new TierwatchError(
        'DB_READ_FAILED',
        `Cannot read ${dbPath} without write access: it is a WAL database and its shared-memory file ${dbPath}-shm cannot be created here (${code}); ${why}`,
        { cause, details: { db: dbPath } },
      );
    if (fs.existsSync(wal) && fs.statSync(wal).size > 0) {
      throw cannot(
        `${wal} holds writes not yet in the main file. Give this user write access to ${folder}, or stop the writer (it checkpoints the WAL at close), or read a copy (\`sqlite3 ${dbPath} ".backup copy.db"\` as its owner).`,
        error,
      );
    }
    const immutableUri = `${pathToFileURL(path.resolve(dbPath)).href}?immutable=1`;
    try {
      const fallback = openSqlite(immutableUri, { uri: true, readonly: true, fileMustExist: true });
      fallback.prepare('SELECT count(*) FROM sqlite_master').get();
      return { sqlite: fallback, immutable: true };
    } catch (immutableError) {
      // better-sqlite3 was loaded before SQLITE_USE_URI was set (not the CLI's case): no URIs.
      throw cannot(
        `opening it immutable failed too (${(immutableError as Error).message}). Give this user write access to ${folder}, or read a copy of the file.`,
        immutableError,
      );
    }
  }
}
