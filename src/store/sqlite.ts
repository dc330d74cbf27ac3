/**
 * The one place tierwatch constructs a better-sqlite3 connection: the history (db.ts) and the
 * writer lock file (writer-lock.ts) both open through `openSqlite`. Type imports elsewhere are fine.
 *
 * better-sqlite3 is a native addon, loaded on the first open rather than when this module is
 * imported: commands that never open a database (`--version`, `--help`, `check`) skip it.
 */
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';

const requireLazily = createRequire(import.meta.url);

function loadSqlite(): typeof Database {
  // URI filenames (read once, when the addon loads) for the `immutable` read-only open; every other
  // open goes through sqlitePath(), so a file named `file:…` is still a file.
  process.env.SQLITE_USE_URI ??= '1';
  return requireLazily('better-sqlite3') as typeof Database;
}

/** A path SQLite will not read as a URI (URIs are on for the immutable open). */
function sqlitePath(filePath: string): string {
  return filePath.startsWith('file:') ? `./${filePath}` : filePath;
}

export interface SqliteOpenOptions extends Database.Options {
  /** `filename` is a `file:` URI (the immutable read-only open); otherwise it is always a path. */
  uri?: boolean;
}

/**
 * Opens a better-sqlite3 connection on `filename` (created unless `readonly`/`fileMustExist`).
 * Throws what better-sqlite3 throws (callers map it with sqlite-errors.ts). The caller closes it.
 */
export function openSqlite(filename: string, options: SqliteOpenOptions = {}): Database.Database {
  const { uri = false, ...sqliteOptions } = options;
  const SqliteDatabase = loadSqlite();
  return new SqliteDatabase(uri ? filename : sqlitePath(filename), sqliteOptions);
}
