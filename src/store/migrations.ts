/**
 * Schema migrations. drizzle's own migrator decides what is pending and applies it, in this process,
 * under the caller's writer lock. It is loaded through drizzle's CommonJS entries with
 * `createRequire`: that costs about 130 ms and 23 MB (the ESM entry pulls in every SQL dialect
 * drizzle has, ~800 ms and 250 MB), paid once by each writable open. A read-only open never loads
 * drizzle: it compares the journal's
 * timestamps with drizzle's table, which is the rule drizzle itself applies (a migration is pending
 * when its journal timestamp is newer than the newest one recorded).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';
import { MIGRATIONS_TABLE } from './db-file.ts';

const requireLazily = createRequire(import.meta.url);

export interface JournalEntry {
  tag: string;
  when: number;
}

/** The migrations `migrationsFolder` holds, from drizzle-kit's journal. Throws INTERNAL when it is unreadable. */
export function readJournal(migrationsFolder: string): JournalEntry[] {
  const journalPath = path.join(migrationsFolder, 'meta', '_journal.json');
  try {
    return (JSON.parse(fs.readFileSync(journalPath, 'utf8')) as { entries: JournalEntry[] }).entries;
  } catch (error) {
    throw new TierwatchError(
      'INTERNAL',
      `cannot read the migration journal ${journalPath}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** A migration the database records (drizzle's bookkeeping row, on either backend). */
export interface AppliedRow {
  hash: string;
  created_at: number;
}

function appliedRows(sqlite: Database.Database): AppliedRow[] {
  const hasTable = sqlite
    .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
    .get(MIGRATIONS_TABLE);
  if (!hasTable) return [];
  return sqlite
    .prepare(`SELECT hash, CAST(created_at AS INTEGER) AS created_at FROM ${MIGRATIONS_TABLE}`)
    .all() as AppliedRow[];
}

function tooNew(dbPath: string, row: AppliedRow): TierwatchError {
  const when = Number.isFinite(row.created_at) ? new Date(row.created_at).toISOString() : String(row.created_at);
  return new TierwatchError(
    'DB_SCHEMA_TOO_NEW',
    `The database ${dbPath} was migrated by a newer tierwatch (a migration from ${when} this version does not know): upgrade tierwatch to use it.`,
    { details: { hash: row.hash, createdAt: row.created_at } },
  );
}

/**
 * How many of the journal's migrations the database has not had, by drizzle's rule, without
 * drizzle. Throws DB_SCHEMA_TOO_NEW when the database holds a migration newer than any known here.
 */
export function countPending(sqlite: Database.Database, journal: JournalEntry[], dbPath: string): number {
  return pendingAfter(journal, appliedRows(sqlite), dbPath);
}

/** countPending on the rows already read (either backend); `where` names the database in the error. */
export function pendingAfter(journal: readonly JournalEntry[], applied: readonly AppliedRow[], where: string): number {
  const newestKnown = Math.max(0, ...journal.map((entry) => entry.when));
  const newestApplied = applied.reduce<AppliedRow | null>(
    (newest, row) => (newest === null || row.created_at > newest.created_at ? row : newest),
    null,
  );
  if (newestApplied !== null && newestApplied.created_at > newestKnown) throw tooNew(where, newestApplied);
  return journal.filter((entry) => entry.when > (newestApplied?.created_at ?? 0)).length;
}

/**
 * Applies the pending migrations with drizzle's migrator and returns how many it applied. The
 * caller holds the writer lock. First checks the bookkeeping against drizzle's reading of the
 * migrations folder (its `readMigrationFiles`, the hashes it records): a recorded migration this
 * version does not know means a newer tierwatch (DB_SCHEMA_TOO_NEW) or another build of it.
 * SQLite errors propagate for the caller to map.
 */
export function applyMigrations(sqlite: Database.Database, migrationsFolder: string, dbPath: string): number {
  const { readMigrationFiles } = requireLazily('drizzle-orm/migrator') as typeof import('drizzle-orm/migrator');
  const known = readMigrationFiles({ migrationsFolder });
  const knownHashes = new Set(known.map((migration) => migration.hash));
  const newestKnown = Math.max(0, ...known.map((migration) => migration.folderMillis));
  const before = appliedRows(sqlite);
  for (const row of before) {
    if (knownHashes.has(row.hash)) continue;
    if (row.created_at > newestKnown) throw tooNew(dbPath, row);
    throw new TierwatchError(
      'DB_SCHEMA_TOO_NEW',
      `The database ${dbPath} holds a migration (from ${new Date(row.created_at).toISOString()}) this tierwatch does not know: it was made by another build of tierwatch; use a matching version.`,
      { details: { hash: row.hash, createdAt: row.created_at } },
    );
  }
  const { drizzle } = requireLazily('drizzle-orm/better-sqlite3') as typeof import('drizzle-orm/better-sqlite3');
  const { migrate } = requireLazily(
    'drizzle-orm/better-sqlite3/migrator',
  ) as typeof import('drizzle-orm/better-sqlite3/migrator');
  migrate(drizzle(sqlite), { migrationsFolder });
  return appliedRows(sqlite).length - before.length;
}

/** drizzle wraps the SqliteError of a failed statement; the error mapping needs the SqliteError itself. */
export function sqliteCause(error: unknown): unknown {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    if (current.name === 'SqliteError') return current;
  }
  return error;
}
