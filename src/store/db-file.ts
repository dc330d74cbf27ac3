/**
 * What is at a database path, decided before (or without) opening it for writing: whether the file
 * is a SQLite database at all (its 100-byte header), whether it is a tierwatch history or another
 * program's database, and which file (device and inode) it is, so a writer notices when the file
 * it opened was deleted or replaced under it.
 *
 * Nothing here writes. The header read is a single 100-byte read; the classification reads
 * `sqlite_master` and the header's application id.
 */
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';

/**
 * SQLite's `application_id` (header offset 68) for a tierwatch history: 'TWTC'. Set by the writer
 * when it migrates (0.1.0 databases, made before it existed, get it at their next writable open).
 */
export const TIERWATCH_APPLICATION_ID = 0x54575443;

/** drizzle's bookkeeping table: every tierwatch history has one, since the very first version. */
export const MIGRATIONS_TABLE = '__drizzle_migrations';

const SQLITE_MAGIC = 'SQLite format 3\u0000';

export interface DbHeader {
  /** A zero-length file: SQLite treats it as a new, empty database. */
  empty: boolean;
  /** The header says WAL mode (read and write versions 2): a reader needs the -shm file. */
  wal: boolean;
  applicationId: number;
}

/**
 * Reads and checks the 100-byte header of the database file at `dbPath` (which must exist).
 * Throws DB_CORRUPT when the file is not a SQLite database or its header is damaged (bad magic,
 * an impossible page size or format): a file overwritten from its start lands here, cheaply,
 * before SQLite reads any of it.
 */
export function readHeader(dbPath: string): DbHeader {
  const fd = fs.openSync(dbPath, 'r');
  let header: Buffer;
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
    header = Buffer.alloc(100);
    fs.readSync(fd, header, 0, 100, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (size === 0) return { empty: true, wal: false, applicationId: 0 };
  const corrupt = (why: string) =>
    new TierwatchError(
      'DB_CORRUPT',
      `The database ${dbPath} is corrupt or not a SQLite database: ${why}. Restore it from a backup, or point TIERWATCH_DB at another file.`,
      {
        details: { db: dbPath },
      },
    );
  if (size < 100 || header.toString('latin1', 0, 16) !== SQLITE_MAGIC) {
    throw corrupt('its first bytes are not a SQLite header');
  }
  const rawPageSize = header.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65_536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) {
    throw corrupt(`its header gives an impossible page size (${rawPageSize})`);
  }
  const writeVersion = header[18]!;
  const readVersion = header[19]!;
  if (![1, 2].includes(writeVersion) || ![1, 2].includes(readVersion)) {
    throw corrupt('its header gives an unknown file format');
  }
  return { empty: false, wal: readVersion === 2, applicationId: header.readUInt32BE(68) };
}

export type DbKind = 'empty' | 'tierwatch' | 'foreign';

/**
 * Whether an open database is a tierwatch history ('tierwatch'), holds no table yet ('empty'), or
 * is another program's database ('foreign': tables of its own and no tierwatch marker). The marker
 * is the application id; a 0.1.0 history, made before the id was set, is recognised by drizzle's
 * migration table beside tierwatch's `meta` table. Reads only.
 */
export function classifyDatabase(sqlite: Database.Database): DbKind {
  const names = sqlite
    .prepare<[], string>(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .pluck()
    .all();
  if (names.length === 0) return 'empty';
  // drizzle's migrator creates its table before the transaction that applies the migrations: a first
  // start seen half-way by a second one holds just that table, empty. Nothing of anyone's is in it.
  if (
    names.length === 1 &&
    names[0] === MIGRATIONS_TABLE &&
    sqlite.prepare(`SELECT count(*) FROM ${MIGRATIONS_TABLE}`).pluck().get() === 0
  ) {
    return 'empty';
  }
  if (Number(sqlite.pragma('application_id', { simple: true })) === TIERWATCH_APPLICATION_ID) return 'tierwatch';
  return names.includes(MIGRATIONS_TABLE) && names.includes('meta') ? 'tierwatch' : 'foreign';
}

/** The refusal for a database that is not a tierwatch history (exit 2: the setting is wrong). */
export function foreignDatabaseError(dbPath: string): TierwatchError {
  return new TierwatchError(
    'DB_FOREIGN',
    `${dbPath} is a SQLite database of another program (it has tables of its own and no tierwatch marker); tierwatch leaves it untouched. Point TIERWATCH_DB (or --db) at a new file or an existing tierwatch history.`,
    { details: { db: dbPath } },
  );
}

export interface FileIdentity {
  dev: number;
  ino: number;
}

/** The device and inode of the file at `dbPath`, or null when there is none. */
export function fileIdentity(dbPath: string): FileIdentity | null {
  try {
    const stat = fs.statSync(dbPath);
    return { dev: stat.dev, ino: stat.ino };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Throws DB_REPLACED when the file at `dbPath` is no longer `opened` (deleted, or another file
 * moved in its place): writes would go to a file nobody can see any more, and are lost.
 */
export function assertSameFile(dbPath: string, opened: FileIdentity): void {
  const now = fileIdentity(dbPath);
  if (now !== null && now.dev === opened.dev && now.ino === opened.ino) return;
  throw new TierwatchError(
    'DB_REPLACED',
    now === null
      ? `The database ${dbPath} was deleted while tierwatch had it open; stopping so that no sweep is written into a file nobody can read. Restore the file (or let the next start create a new one) and start tierwatch again.`
      : `The database ${dbPath} was replaced by another file while tierwatch had it open; stopping so that no sweep is written into the old, unlinked file. Start tierwatch again to use the new file.`,
    { details: { db: dbPath } },
  );
}
