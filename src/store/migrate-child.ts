/**
 * The migration process: `node migrate-child.js DB_PATH MIGRATIONS_FOLDER` applies the pending
 * drizzle migrations to DB_PATH and exits. openDatabase runs it so that drizzle, which costs about
 * two seconds and 200 MB to import under Node 24, is never loaded by a long-lived process.
 *
 * Contract with openDatabase (db.ts): the last line on stdout is JSON, `{"ok":true}` after every
 * pending migration was applied (exit 0), or `{"ok":false,"code":ERROR_CODE,"message":…}` (exit 1)
 * with the error mapped as the store maps SQLite errors (DB_LOCKED, DB_WRITE_FAILED, INTERNAL).
 */
import { createRequire } from 'node:module';
import type DatabaseType from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';
import { BUSY_TIMEOUT_MS } from './db.ts';
import { sqliteErrorCode, toStoreError } from './sqlite-errors.ts';

const require = createRequire(import.meta.url);

/** drizzle wraps the SqliteError of a failed statement; the mapping needs the SqliteError itself. */
function sqliteCause(error: unknown): unknown {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    if (sqliteErrorCode(current) !== null) return current;
  }
  return error;
}

function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const [dbPath, migrationsFolder] = process.argv.slice(2);
if (dbPath === undefined || migrationsFolder === undefined) {
  report({ ok: false, code: 'INTERNAL', message: 'usage: migrate-child DB_PATH MIGRATIONS_FOLDER' });
  process.exitCode = 1;
} else {
  let sqlite: DatabaseType.Database | undefined;
  try {
    const Database = require('better-sqlite3') as typeof DatabaseType;
    const { drizzle } = require('drizzle-orm/better-sqlite3') as typeof import('drizzle-orm/better-sqlite3');
    const { migrate } = require('drizzle-orm/better-sqlite3/migrator') as typeof import('drizzle-orm/better-sqlite3/migrator');
    sqlite = new Database(dbPath, { fileMustExist: true });
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    sqlite.pragma('foreign_keys = ON');
    migrate(drizzle(sqlite), { migrationsFolder });
    sqlite.close();
    report({ ok: true });
  } catch (thrown) {
    try {
      sqlite?.close();
    } catch {
      /* the error below is what matters */
    }
    const error = thrown instanceof TierwatchError ? thrown : toStoreError(sqliteCause(thrown), `migrating ${dbPath}`);
    report({ ok: false, code: error.code, message: error.message });
    process.exitCode = 1;
  }
}
