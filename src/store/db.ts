/**
 * Opening the database: with db-read.ts (reading a file without changing it), the only modules in
 * tierwatch that open the history, both through sqlite.ts, the one module that constructs a
 * better-sqlite3 connection.
 *
 * Before SQLite touches a file, its header is checked (DB_CORRUPT) and the database classified: a
 * SQLite file of another program is refused (DB_FOREIGN) and left byte-for-byte as it was (no WAL,
 * no tables). A writable open (made by a caller that holds the writer lock, `writer.ts`) then sets
 * WAL and the pragmas below and applies the pending drizzle migrations (`migrations.ts`). A
 * read-only open changes nothing, needs no write access to the file or its folder, and refuses a
 * database whose schema does not match this tierwatch. Either open refuses a database migrated by
 * a newer tierwatch (DB_SCHEMA_TOO_NEW): its views may mean something else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { TierwatchError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import type * as schema from './schema.ts';
import {
  assertSameFile,
  classifyDatabase,
  fileIdentity,
  foreignDatabaseError,
  TIERWATCH_APPLICATION_ID,
} from './db-file.ts';
import { applyMigrations, countPending, readJournal, sqliteCause } from './migrations.ts';
import { noteDatabasePath, toStoreError } from './sqlite-errors.ts';
import { openSqlite } from './sqlite.ts';
import { inspectDatabaseFile, openForReading, quickCheck } from './db-read.ts';

export { openSqlite, type SqliteOpenOptions } from './sqlite.ts';
export { inspectDatabaseFile, summarizeHistory, type HistorySummary } from './db-read.ts';

/**
 * better-sqlite3 (a native addon, see sqlite.ts) and drizzle are loaded when first needed, not when
 * this module is imported: commands that never open the database (`--version`, `--help`, `check`) skip both.
 * drizzle's query builder is loaded only for a caller of `orm` (its relations module imports every
 * SQL dialect drizzle has); the daemon and the query commands work on prepared statements.
 */
const requireLazily = createRequire(import.meta.url);

/** This module's own extension: `.ts` when run from the sources (tests), `.js` when built. */
const OWN_EXTENSION = path.extname(fileURLToPath(import.meta.url));

function loadDrizzle(): {
  drizzle: typeof import('drizzle-orm/better-sqlite3').drizzle;
  schema: typeof schema;
} {
  const { drizzle } = requireLazily('drizzle-orm/better-sqlite3') as typeof import('drizzle-orm/better-sqlite3');
  const loadedSchema = requireLazily(`./schema${OWN_EXTENSION}`) as typeof schema;
  return { drizzle, schema: loadedSchema };
}

/** How long a statement waits for another connection's write lock before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * SQLite's automatic checkpoint (by default at 1,000 WAL pages) runs inside the COMMIT that crosses
 * it: a sweep with 1% of 100,000 tiers changed writes ~28 MB of WAL and paid ~200 ms for it. The
 * writer checkpoints after each sweep instead (`checkpoint()`, outside the sweep); this much higher
 * threshold (64 MiB of 4 KiB pages) stays only as a backstop for a writer that never calls it.
 */
export const WAL_AUTOCHECKPOINT_PAGES = 16_384;
/** After a complete checkpoint, the next writer truncates a WAL file larger than this (bytes). */
export const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

export interface OpenOptions {
  /** Open without writing anything: no directory, no pragmas that write, no migrations. */
  readonly?: boolean;
  logger?: Logger;
  /** Where the migrations live; by default `migrations/` at the package root. For tests. */
  migrationsFolder?: string;
}

/** What one `checkpoint()` did, as `PRAGMA wal_checkpoint` reports it. */
export interface CheckpointResult {
  /** A reader (or another checkpointer) kept some frames from being copied; they are copied next time. */
  busy: boolean;
  /** Frames in the WAL, and how many of them are now in the database file. */
  walFrames: number;
  checkpointedFrames: number;
}

export interface StoreDb {
  readonly path: string;
  readonly readonly: boolean;
  /** The raw better-sqlite3 connection: prepared statements for the hot paths and the query engine. */
  readonly sqlite: Database.Database;
  /** The same connection through drizzle, with the schema (tables and typed views); loaded on first use. */
  readonly orm: BetterSQLite3Database<typeof schema>;
  /** How many migrations this open applied (0 when up to date, always 0 when read-only). */
  readonly migrationsApplied: number;
  /**
   * Throws DB_REPLACED when the file at `path` is no longer the one this connection opened
   * (deleted or replaced): the daemon calls it before each sweep.
   */
  assertSameFile(): void;
  /**
   * Copies the WAL into the database file without waiting for anyone (PASSIVE): frames a reader
   * still needs stay for the next call. Readers see committed data before and after alike. The
   * writer calls it after each committed sweep. A no-op (all zeros) on a read-only connection.
   * Throws what SQLite throws (mapped by the caller); a failed checkpoint loses nothing.
   */
  checkpoint(): CheckpointResult;
  /** Checkpoints the WAL into the main file (when writable) and closes. Idempotent. */
  close(): void;
}

/**
 * Finds `migrations/` by walking up from this file to the package root, so the same code works
 * from `src/store/` (tests), `dist/src/store/` (the built CLI) and the Docker image.
 */
export function defaultMigrationsFolder(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'migrations');
    if (fs.existsSync(path.join(candidate, 'meta', '_journal.json')) && fs.existsSync(path.join(dir, 'package.json'))) {
      return candidate;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new TierwatchError('INTERNAL', `cannot find the migrations folder above ${fileURLToPath(import.meta.url)}`);
    }
    dir = parent;
  }
}

/**
 * `PRAGMA quick_check` reads every page (about 0.6 s for a 186 MB file here), so a read-only open
 * runs it only on files up to this size; larger ones rely on the header check and on SQLite's own
 * SQLITE_CORRUPT, mapped to DB_CORRUPT wherever it surfaces. A writable open always runs it: the
 * writer must not add to a damaged file, and it opens once per process.
 */
export const READER_QUICK_CHECK_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Opens (and, unless read-only, creates and migrates) the database at `dbPath`. A writable open
 * must be made under the writer lock (`commands/writer.ts`): migrations are applied here.
 *
 * Throws TierwatchError: DB_CORRUPT (damaged header or pages, not a SQLite file), DB_FOREIGN
 * (another program's database, untouched), DB_SCHEMA_TOO_NEW (a newer tierwatch migrated it),
 * DB_NEEDS_MIGRATION (read-only open of a database that is behind), DB_EMPTY (read-only open of a
 * file that does not exist), DB_READ_FAILED (a read-only open that cannot read the file),
 * DISK_FULL, DB_WRITE_FAILED (cannot create, read-only file system), DB_LOCKED (another connection
 * held the lock past the busy timeout). The caller owns the result and must close() it.
 */
export function openDatabase(dbPath: string, options: OpenOptions = {}): StoreDb {
  // pino is loaded only if this open has something to log: a query command's read-only open never does.
  let fallbackLogger: Logger | undefined;
  const logger = (): Logger => options.logger ?? (fallbackLogger ??= silentLogger());
  const readonly = options.readonly ?? false;
  const migrationsFolder = options.migrationsFolder ?? defaultMigrationsFolder();
  const journal = readJournal(migrationsFolder);
  noteDatabasePath(dbPath);

  if (readonly && !fs.existsSync(dbPath)) {
    throw new TierwatchError(
      'DB_EMPTY',
      `There is no database at ${dbPath} yet: run \`tierwatch collect\` or \`tierwatch run\` first (or set TIERWATCH_DB).`,
    );
  }
  // Foreign or damaged files are refused here, through a read-only connection that cannot change them.
  const header = inspectDatabaseFile(dbPath);
  if (!readonly) ensurePrivateDirectory(path.dirname(path.resolve(dbPath)), logger);

  let sqlite: Database.Database;
  let immutable = false;
  try {
    if (readonly) ({ sqlite, immutable } = openForReading(dbPath, header!));
    else sqlite = openSqlite(dbPath);
  } catch (error) {
    throw toStoreError(error, `opening ${dbPath}`);
  }
  const identity = fileIdentity(dbPath);

  let migrationsApplied = 0;
  try {
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    sqlite.pragma('foreign_keys = ON');
    // Again on this connection: another program may have created the file since the inspection.
    if (classifyDatabase(sqlite) === 'foreign') throw foreignDatabaseError(dbPath);
    if (!readonly || fs.statSync(dbPath).size <= READER_QUICK_CHECK_MAX_BYTES) quickCheck(sqlite, dbPath);
    if (readonly) {
      const pending = countPending(sqlite, journal, dbPath);
      if (pending > 0) {
        throw new TierwatchError(
          'DB_NEEDS_MIGRATION',
          `The database ${dbPath} needs ${pending} migration(s) this tierwatch would apply: run \`tierwatch migrate\` (or start the daemon) once, then retry.`,
        );
      }
    } else {
      // WAL: readers (the query commands) never block the daemon, and the daemon never blocks them.
      // NORMAL is durable in WAL mode except for the last transactions on power loss, never corrupt.
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = NORMAL');
      sqlite.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
      sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
      migrationsApplied = applyMigrations(sqlite, migrationsFolder, dbPath);
      // The marker that tells a tierwatch history from another program's database (db-file.ts).
      if (Number(sqlite.pragma('application_id', { simple: true })) !== TIERWATCH_APPLICATION_ID) {
        sqlite.pragma(`application_id = ${TIERWATCH_APPLICATION_ID}`);
      }
      if (migrationsApplied > 0) {
        logger().info({ db: dbPath, applied: migrationsApplied, total: journal.length }, 'database migrated');
      }
    }
  } catch (error) {
    sqlite.close();
    throw toStoreError(sqliteCause(error), `opening ${dbPath}`);
  }
  if (immutable) {
    logger().debug({ db: dbPath }, 'opened immutable: no -shm file could be created and no WAL is pending');
  }

  let orm: BetterSQLite3Database<typeof schema> | undefined;
  let closed = false;
  return {
    path: dbPath,
    readonly,
    sqlite,
    get orm() {
      if (orm === undefined) {
        const loaded = loadDrizzle();
        orm = loaded.drizzle(sqlite, { schema: loaded.schema });
      }
      return orm;
    },
    migrationsApplied,
    assertSameFile() {
      if (identity !== null) assertSameFile(dbPath, identity);
    },
    checkpoint() {
      if (readonly || closed) return { busy: false, walFrames: 0, checkpointedFrames: 0 };
      const row = sqlite.pragma('wal_checkpoint(PASSIVE)', { simple: false }) as Array<{
        busy: number;
        log: number;
        checkpointed: number;
      }>;
      const result = row[0] ?? { busy: 0, log: 0, checkpointed: 0 };
      return { busy: result.busy !== 0, walFrames: result.log, checkpointedFrames: result.checkpointed };
    },
    close() {
      if (closed) return;
      closed = true;
      if (!readonly) {
        try {
          // Refreshes the planner's statistics where they are stale (cheap; SQLite's advice at close).
          sqlite.pragma('optimize');
          sqlite.pragma('wal_checkpoint(TRUNCATE)');
        } catch (error) {
          // A reader may still hold the WAL; the next open checkpoints it. Not worth failing a shutdown.
          logger().debug({ err: error, db: dbPath }, 'WAL checkpoint at close did not complete');
        }
      }
      sqlite.close();
    },
  };
}

/**
 * Applies the pending migrations to the database at `dbPath` (creating it if needed) and closes it:
 * the `tierwatch migrate` command, whose caller holds the writer lock. Same errors as openDatabase.
 */
export function migrateDatabase(dbPath: string, logger: Logger = silentLogger()): { applied: number; total: number } {
  const db = openDatabase(dbPath, { logger });
  try {
    return { applied: db.migrationsApplied, total: readJournal(defaultMigrationsFolder()).length };
  } finally {
    db.close();
  }
}

/** Creates the database directory owner-only (0700) when it does not exist; an existing one is left alone. */
export function ensurePrivateDirectory(dir: string, logger: () => Logger): void {
  if (fs.existsSync(dir)) return;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode is filtered by the umask; set it explicitly so a loose umask cannot widen it.
    fs.chmodSync(dir, 0o700);
  } catch (error) {
    throw new TierwatchError(
      'DB_WRITE_FAILED',
      `cannot create the database directory ${dir}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  logger().info({ dir }, 'created the database directory (owner-only)');
}
