/**
 * Opening the database: the only module in tierwatch that opens better-sqlite3.
 *
 * A writable open creates the parent directory (owner-only), sets WAL and the pragmas below, and
 * applies the pending drizzle migrations from `migrations/`. A read-only open changes nothing and
 * refuses a database whose schema does not match this tierwatch. Either open refuses a database
 * migrated by a newer tierwatch (DB_SCHEMA_TOO_NEW): its views may mean something else.
 *
 * Pending migrations are applied by drizzle's migrator in a short-lived child process
 * (`migrate-child.ts`): importing drizzle costs about two seconds of CPU and 200 MB under Node 24,
 * memory a daemon would keep for its lifetime. Everything else here (which migrations are pending,
 * whether the database is too new) is decided in this process without drizzle.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { ERROR_CODES, TierwatchError, type ErrorCode } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import type * as schema from './schema.ts';
import { toStoreError } from './sqlite-errors.ts';

/**
 * better-sqlite3 (a native addon) and drizzle are loaded when first needed, not when this module is
 * imported: commands that never open the database (`--version`, `--help`, `check`) skip both.
 * drizzle's query builder is loaded only for a caller of `orm` (its relations module imports every
 * SQL dialect drizzle has); the daemon and the query commands work on prepared statements.
 */
const requireLazily = createRequire(import.meta.url);

/** This module's own extension: `.ts` when run from the sources (tests), `.js` when built. */
const OWN_EXTENSION = path.extname(fileURLToPath(import.meta.url));

function loadSqlite(): typeof Database {
  return requireLazily('better-sqlite3') as typeof Database;
}

function loadDrizzle(): {
  drizzle: typeof import('drizzle-orm/better-sqlite3').drizzle;
  schema: typeof schema;
} {
  const { drizzle } = requireLazily('drizzle-orm/better-sqlite3') as typeof import('drizzle-orm/better-sqlite3');
  const loadedSchema = requireLazily(`./schema${OWN_EXTENSION}`) as typeof schema;
  return { drizzle, schema: loadedSchema };
}

/** drizzle's default bookkeeping table; its rows are (hash of the SQL file, journal timestamp). */
const MIGRATIONS_TABLE = '__drizzle_migrations';

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

/** One migration as drizzle identifies it: the journal timestamp and the SHA-256 of its SQL file. */
export interface MigrationMeta {
  tag: string;
  folderMillis: number;
  hash: string;
}

/**
 * Reads the migrations drizzle would apply from `migrationsFolder`, identified exactly as drizzle's
 * own `readMigrationFiles` identifies them (journal `when`, SHA-256 of the whole SQL file; a test
 * holds the two equal), so the pending check needs no drizzle. Throws INTERNAL when the journal or
 * a file it names is missing: the package is broken.
 */
export function readMigrations(migrationsFolder: string): MigrationMeta[] {
  const journalPath = path.join(migrationsFolder, 'meta', '_journal.json');
  let entries: Array<{ tag: string; when: number }>;
  try {
    entries = (JSON.parse(fs.readFileSync(journalPath, 'utf8')) as { entries: Array<{ tag: string; when: number }> }).entries;
  } catch (error) {
    throw new TierwatchError('INTERNAL', `cannot read the migration journal ${journalPath}: ${(error as Error).message}`, { cause: error });
  }
  return entries.map((entry) => {
    const file = path.join(migrationsFolder, `${entry.tag}.sql`);
    let sql: string;
    try {
      sql = fs.readFileSync(file).toString();
    } catch (error) {
      throw new TierwatchError('INTERNAL', `the migration journal names ${file}, which cannot be read`, { cause: error });
    }
    return { tag: entry.tag, folderMillis: entry.when, hash: createHash('sha256').update(sql).digest('hex') };
  });
}

/**
 * Opens (and, unless read-only, creates and migrates) the database at `dbPath`.
 *
 * Throws TierwatchError: DB_SCHEMA_TOO_NEW (a newer tierwatch migrated it), DB_NEEDS_MIGRATION
 * (read-only open of a database that is behind), DB_EMPTY (read-only open of a file that does not
 * exist), DB_WRITE_FAILED (cannot create, not a database, corrupt, read-only file system, or the
 * migration process failed otherwise), DB_LOCKED (another process held the lock past the busy
 * timeout while migrating). The caller owns the result and must close() it.
 */
export function openDatabase(dbPath: string, options: OpenOptions = {}): StoreDb {
  // pino is loaded only if this open has something to log: a query command's read-only open never does.
  let fallbackLogger: Logger | undefined;
  const logger = (): Logger => options.logger ?? (fallbackLogger ??= silentLogger());
  const readonly = options.readonly ?? false;
  const migrationsFolder = options.migrationsFolder ?? defaultMigrationsFolder();
  const known = readMigrations(migrationsFolder);

  if (readonly && !fs.existsSync(dbPath)) {
    throw new TierwatchError(
      'DB_EMPTY',
      `There is no database at ${dbPath} yet: run \`tierwatch collect\` or \`tierwatch run\` first (or set TIERWATCH_DB).`,
    );
  }
  if (!readonly) ensurePrivateDirectory(path.dirname(path.resolve(dbPath)), logger);

  let sqlite: Database.Database;
  try {
    const SqliteDatabase = loadSqlite();
    sqlite = new SqliteDatabase(dbPath, { readonly, fileMustExist: readonly });
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
      sqlite.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
      sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    }
    const pending = pendingMigrations(sqlite, known, dbPath);
    if (pending > 0) {
      if (readonly) {
        throw new TierwatchError(
          'DB_NEEDS_MIGRATION',
          `The database ${dbPath} needs ${pending} migration(s) this tierwatch would apply: run \`tierwatch migrate\` (or start the daemon) once, then retry.`,
        );
      }
      migrateInChildProcess(dbPath, migrationsFolder);
      migrationsApplied = pending;
      logger().info({ db: dbPath, applied: pending, total: known.length }, 'database migrated');
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
    checkpoint() {
      if (readonly || closed) return { busy: false, walFrames: 0, checkpointedFrames: 0 };
      const row = sqlite.pragma('wal_checkpoint(PASSIVE)', { simple: false }) as Array<{ busy: number; log: number; checkpointed: number }>;
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

/** The entry module the migration runs in, beside this one and with its extension. */
export function migrateChildModule(): string {
  return fileURLToPath(new URL(`./migrate-child${OWN_EXTENSION}`, import.meta.url));
}

/**
 * Applies the pending migrations with drizzle's migrator in a child process (see the module
 * comment) and waits for it. The child reports failure as one JSON line on stdout
 * (`{"ok":false,"code":…,"message":…}`), mapped there the way this process maps SQLite errors;
 * a child that dies without one (killed, out of memory) is DB_WRITE_FAILED with what it printed.
 */
function migrateInChildProcess(dbPath: string, migrationsFolder: string): void {
  const child = spawnSync(process.execPath, [migrateChildModule(), dbPath, migrationsFolder], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    windowsHide: true,
  });
  const report = lastJsonLine(child.stdout ?? '');
  if (child.status === 0 && report?.ok === true) return;
  if (report !== null && report.ok === false && typeof report.code === 'string' && report.code in ERROR_CODES) {
    throw new TierwatchError(report.code as ErrorCode, String(report.message), {
      retryable: report.code === 'DB_LOCKED',
      details: { migrationProcess: true },
    });
  }
  const why =
    child.error !== undefined
      ? child.error.message
      : `it exited with ${child.status ?? `signal ${child.signal}`}${child.stderr?.trim() ? `: ${lastLines(child.stderr.trim(), 5)}` : ''}`;
  throw new TierwatchError('DB_WRITE_FAILED', `migrating ${dbPath} failed: the migration process did not complete (${why})`, {
    details: { migrationProcess: true },
  });
}

function lastJsonLine(text: string): { ok?: unknown; code?: unknown; message?: unknown } | null {
  const line = text.trim().split('\n').at(-1);
  if (line === undefined || line === '') return null;
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null ? (parsed as { ok?: unknown }) : null;
  } catch {
    return null;
  }
}

function lastLines(text: string, count: number): string {
  return text.split('\n').slice(-count).join(' | ');
}

/**
 * Applies the pending migrations to the database at `dbPath` (creating it if needed) and closes it:
 * the `tierwatch migrate` command. Same errors as openDatabase.
 */
export function migrateDatabase(dbPath: string, logger: Logger = silentLogger()): { applied: number; total: number } {
  const db = openDatabase(dbPath, { logger });
  try {
    const total = readMigrations(defaultMigrationsFolder()).length;
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
function ensurePrivateDirectory(dir: string, logger: () => Logger): void {
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
  logger().info({ dir }, 'created the database directory (owner-only)');
}
