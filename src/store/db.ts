/**
 * Opening the database: the only module in tierwatch that opens better-sqlite3.
 *
 * A writable open creates the parent directory (owner-only), sets WAL and the pragmas below, and
 * applies the pending drizzle migrations from `migrations/`. A read-only open changes nothing and
 * refuses a database whose schema does not match this tierwatch. Either open refuses a database
 * migrated by a newer tierwatch (DB_SCHEMA_TOO_NEW): its views may mean something else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { readMigrationFiles, type MigrationMeta } from 'drizzle-orm/migrator';
import { TierwatchError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import type * as schema from './schema.ts';
import { toStoreError } from './sqlite-errors.ts';

/**
 * drizzle's query builder and migrator are loaded only when used: importing them pulls in every
 * SQL dialect drizzle has (its relations module imports pg-core), about a second of CPU and over
 * 200 MB of short-lived allocations. The daemon and the query commands work on prepared statements
 * and never need them; only a database with pending migrations (or a caller of `orm`) pays.
 */
const requireLazily = createRequire(import.meta.url);

function loadDrizzle(): {
  drizzle: typeof import('drizzle-orm/better-sqlite3').drizzle;
  migrate: typeof import('drizzle-orm/better-sqlite3/migrator').migrate;
  schema: typeof schema;
} {
  const { drizzle } = requireLazily('drizzle-orm/better-sqlite3') as typeof import('drizzle-orm/better-sqlite3');
  const { migrate } = requireLazily('drizzle-orm/better-sqlite3/migrator') as typeof import('drizzle-orm/better-sqlite3/migrator');
  // The compiled build is .js, the sources (tests) .ts: require the sibling with our own extension.
  const loadedSchema = requireLazily(`./schema${path.extname(fileURLToPath(import.meta.url))}`) as typeof schema;
  return { drizzle, migrate, schema: loadedSchema };
}

/** drizzle's default bookkeeping table; its rows are (hash of the SQL file, journal timestamp). */
const MIGRATIONS_TABLE = '__drizzle_migrations';

/** How long a statement waits for another connection's write lock before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;

export interface OpenOptions {
  /** Open without writing anything: no directory, no pragmas that write, no migrations. */
  readonly?: boolean;
  logger?: Logger;
  /** Where the migrations live; by default `migrations/` at the package root. For tests. */
  migrationsFolder?: string;
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
 * Opens (and, unless read-only, creates and migrates) the database at `dbPath`.
 *
 * Throws TierwatchError: DB_SCHEMA_TOO_NEW (a newer tierwatch migrated it), DB_NEEDS_MIGRATION
 * (read-only open of a database that is behind), DB_EMPTY (read-only open of a file that does not
 * exist), DB_WRITE_FAILED (cannot create, not a database, corrupt, read-only file system),
 * DB_LOCKED (another process held the lock past the busy timeout while migrating).
 * The caller owns the result and must close() it.
 */
export function openDatabase(dbPath: string, options: OpenOptions = {}): StoreDb {
  const logger = options.logger ?? silentLogger();
  const readonly = options.readonly ?? false;
  const migrationsFolder = options.migrationsFolder ?? defaultMigrationsFolder();
  const known = readMigrationFiles({ migrationsFolder });

  if (readonly && !fs.existsSync(dbPath)) {
    throw new TierwatchError(
      'DB_EMPTY',
      `There is no database at ${dbPath} yet: run \`tierwatch collect\` or \`tierwatch run\` first (or set TIERWATCH_DB).`,
    );
  }
  if (!readonly) ensurePrivateDirectory(path.dirname(path.resolve(dbPath)), logger);

  let sqlite: Database.Database;
  try {
    sqlite = new Database(dbPath, { readonly, fileMustExist: readonly });
  } catch (error) {
    throw toStoreError(error, `opening ${dbPath}`);
  }

  let migrationsApplied = 0;
  try {
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    sqlite.pragma('foreign_keys = ON');
    if (!readonly) {
      // WAL: readers (the query commands) never block the daemon, and the daemon never blocks them.
      // NORMAL is durable in WAL mode except for the last transactions on power loss, never corrupt.
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = NORMAL');
    }
    const pending = pendingMigrations(sqlite, known, dbPath);
    if (pending > 0) {
      if (readonly) {
        throw new TierwatchError(
          'DB_NEEDS_MIGRATION',
          `The database ${dbPath} needs ${pending} migration(s) this tierwatch would apply: run \`tierwatch migrate\` (or start the daemon) once, then retry.`,
        );
      }
      const { drizzle, migrate } = loadDrizzle();
      migrate(drizzle(sqlite), { migrationsFolder });
      migrationsApplied = pending;
      logger.info({ db: dbPath, applied: pending, total: known.length }, 'database migrated');
    }
  } catch (error) {
    sqlite.close();
    throw toStoreError(error, `opening ${dbPath}`);
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
          logger.debug({ err: error, db: dbPath }, 'WAL checkpoint at close did not complete');
        }
      }
      sqlite.close();
    },
  };
}

/**
 * Applies the pending migrations to the database at `dbPath` (creating it if needed) and closes it:
 * the `tierwatch migrate` command. Same errors as openDatabase.
 */
export function migrateDatabase(dbPath: string, logger: Logger = silentLogger()): { applied: number; total: number } {
  const db = openDatabase(dbPath, { logger });
  try {
    const total = readMigrationFiles({ migrationsFolder: defaultMigrationsFolder() }).length;
    return { applied: db.migrationsApplied, total };
  } finally {
    db.close();
  }
}

/**
 * Counts the known migrations the database has not had, after checking that every migration it has
 * had is one this tierwatch knows (else DB_SCHEMA_TOO_NEW). Mirrors drizzle's own rule: a migration
 * is pending when its journal timestamp is newer than the newest one recorded in the database.
 */
function pendingMigrations(sqlite: Database.Database, known: MigrationMeta[], dbPath: string): number {
  const hasTable = sqlite
    .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
    .get(MIGRATIONS_TABLE);
  if (!hasTable) return known.length;

  const applied = sqlite
    .prepare(`SELECT hash, CAST(created_at AS INTEGER) AS created_at FROM ${MIGRATIONS_TABLE}`)
    .all() as Array<{ hash: string; created_at: number }>;
  const knownHashes = new Set(known.map((migration) => migration.hash));
  const newestKnown = Math.max(0, ...known.map((migration) => migration.folderMillis));
  for (const row of applied) {
    if (knownHashes.has(row.hash)) continue;
    const when = Number.isFinite(row.created_at) ? new Date(row.created_at).toISOString() : String(row.created_at);
    const newer = row.created_at > newestKnown;
    throw new TierwatchError(
      'DB_SCHEMA_TOO_NEW',
      newer
        ? `The database ${dbPath} was migrated by a newer tierwatch (a migration from ${when} this version does not know): upgrade tierwatch to use it.`
        : `The database ${dbPath} holds a migration (from ${when}) this tierwatch does not know: it was made by another build of tierwatch; use a matching version.`,
      { details: { hash: row.hash, createdAt: row.created_at } },
    );
  }
  const newestApplied = Math.max(0, ...applied.map((row) => row.created_at));
  return known.filter((migration) => migration.folderMillis > newestApplied).length;
}

/** Creates the database directory owner-only (0700) when it does not exist; an existing one is left alone. */
function ensurePrivateDirectory(dir: string, logger: Logger): void {
  if (fs.existsSync(dir)) return;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode is filtered by the umask; set it explicitly so a loose umask cannot widen it.
    fs.chmodSync(dir, 0o700);
  } catch (error) {
    throw new TierwatchError('DB_WRITE_FAILED', `cannot create the database directory ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  logger.info({ dir }, 'created the database directory (owner-only)');
}
