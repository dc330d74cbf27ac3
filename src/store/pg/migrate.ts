/**
 * Schema migrations of a Postgres history, safe to race.
 *
 * drizzle's migrator takes no lock: it reads the last applied migration, then applies the newer ones
 * in a transaction, so two daemons starting together would both apply the same migration (and one
 * would fail half-way, or both "succeed" twice). Here every migrator first takes a session-level
 * advisory lock with a fixed key, `MIGRATION_LOCK_KEY`, on its own connection; the others wait for
 * it, then find nothing left to apply. The lock is released when the migration ends, or by the
 * server when that connection dies, so a crashed migrator never leaves it held.
 *
 * A session lock needs a real session: run migrations over a direct connection (or a pooler in
 * session mode), not through PgBouncer in transaction mode.
 *
 * drizzle is loaded through its CommonJS entries, as for SQLite (src/store/migrations.ts): the ESM
 * entry pulls in every dialect drizzle has.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type pg from 'pg';
import { TierwatchError } from '../../errors.ts';
import { connectPg, describePgUrl } from './connection.ts';

const requireLazily = createRequire(import.meta.url);

/**
 * The advisory lock every tierwatch migrator takes: the bytes of "tierwatc" as a 64-bit integer
 * (0x7469657277617463). Another application using this key on the same database would wait for
 * tierwatch's migrations, and tierwatch for it; nothing worse.
 */
export const MIGRATION_LOCK_KEY = '8388347323257812067';

/** Where drizzle records the applied migrations (its defaults, kept out of the public schema). */
export const PG_MIGRATIONS_SCHEMA = 'drizzle';
export const PG_MIGRATIONS_TABLE = '__drizzle_migrations';

/** How long a migrator waits for another one before giving up with DB_LOCKED. */
export const MIGRATION_LOCK_WAIT_MS = 120_000;

/**
 * Finds `migrations-pg/` by walking up from this file to the package root, so the same code works
 * from `src/store/pg/` (tests), `dist/src/store/pg/` (the built CLI) and the Docker image.
 */
export function defaultPgMigrationsFolder(): string {
  let dir = import.meta.dirname;
  for (;;) {
    const candidate = path.join(dir, 'migrations-pg');
    if (fs.existsSync(path.join(candidate, 'meta', '_journal.json')) && fs.existsSync(path.join(dir, 'package.json'))) {
      return candidate;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new TierwatchError('INTERNAL', `cannot find the migrations-pg folder above ${import.meta.dirname}`);
    }
    dir = parent;
  }
}

export interface PgMigrateOptions {
  migrationsFolder?: string;
  lockWaitMs?: number;
}

export interface PgMigrateResult {
  /** Migrations this call applied (0 when another migrator had applied them all). */
  applied: number;
  /** Migrations the database holds now. */
  total: number;
}

interface AppliedRow {
  hash: string;
  created_at: number;
}

async function appliedRows(client: pg.Client): Promise<AppliedRow[]> {
  const exists = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
    `${PG_MIGRATIONS_SCHEMA}.${PG_MIGRATIONS_TABLE}`,
  ]);
  if (exists.rows[0]?.found !== true) return [];
  const rows = await client.query<AppliedRow>(
    `SELECT hash, created_at FROM ${PG_MIGRATIONS_SCHEMA}.${PG_MIGRATIONS_TABLE}`,
  );
  return rows.rows;
}

/**
 * Applies the pending migrations to the database at `url` under the migration lock, and returns
 * how many this call applied. Idempotent, and safe to call from several processes at once: each
 * migration is applied exactly once. Throws DB_LOCKED when another migrator holds the lock longer
 * than `lockWaitMs`, DB_SCHEMA_TOO_NEW when the database holds a migration this tierwatch does not
 * know, DB_WRITE_FAILED when Postgres refuses (the message names the database, never the password).
 * Opens and closes its own connection.
 */
export async function migratePostgres(url: string, options: PgMigrateOptions = {}): Promise<PgMigrateResult> {
  const migrationsFolder = options.migrationsFolder ?? defaultPgMigrationsFolder();
  const where = describePgUrl(url);
  let client: pg.Client;
  try {
    client = await connectPg(url, { applicationName: 'tierwatch migrate' });
  } catch (error) {
    throw new TierwatchError(
      'DB_WRITE_FAILED',
      `cannot connect to ${where} to migrate it: ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    await takeLock(client, where, options.lockWaitMs ?? MIGRATION_LOCK_WAIT_MS);
    try {
      return await migrateLocked(client, migrationsFolder, where);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function takeLock(client: pg.Client, where: string, waitMs: number): Promise<void> {
  // lock_timeout bounds the wait for an advisory lock like any other; it is reset before migrating.
  await client.query(`SELECT set_config('lock_timeout', $1, false)`, [`${Math.max(1, Math.round(waitMs))}ms`]);
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') {
      throw new TierwatchError(
        'DB_LOCKED',
        `another tierwatch has been migrating ${where} for more than ${Math.round(waitMs / 1000)} s; try again when it is done`,
        { cause: error },
      );
    }
    throw new TierwatchError(
      'DB_WRITE_FAILED',
      `cannot take the migration lock on ${where}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  await client.query('RESET lock_timeout');
}

async function migrateLocked(client: pg.Client, migrationsFolder: string, where: string): Promise<PgMigrateResult> {
  const { readMigrationFiles } = requireLazily('drizzle-orm/migrator') as typeof import('drizzle-orm/migrator');
  const known = readMigrationFiles({ migrationsFolder });
  const knownHashes = new Set(known.map((migration) => migration.hash));
  const before = await appliedRows(client);
  for (const row of before) {
    if (knownHashes.has(row.hash)) continue;
    throw new TierwatchError(
      'DB_SCHEMA_TOO_NEW',
      `The database ${where} holds a migration (from ${new Date(Number(row.created_at)).toISOString()}) this tierwatch does not know: it was migrated by a newer or another build of tierwatch; use a matching version.`,
      { details: { hash: row.hash, createdAt: row.created_at } },
    );
  }
  const { drizzle } = requireLazily('drizzle-orm/node-postgres') as typeof import('drizzle-orm/node-postgres');
  const { migrate } = requireLazily(
    'drizzle-orm/node-postgres/migrator',
  ) as typeof import('drizzle-orm/node-postgres/migrator');
  try {
    await migrate(drizzle({ client }), {
      migrationsFolder,
      migrationsSchema: PG_MIGRATIONS_SCHEMA,
      migrationsTable: PG_MIGRATIONS_TABLE,
    });
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause ?? error;
    throw new TierwatchError('DB_WRITE_FAILED', `migrating ${where} failed: ${(cause as Error).message}`, {
      cause: error,
    });
  }
  const after = await appliedRows(client);
  return { applied: after.length - before.length, total: after.length };
}
