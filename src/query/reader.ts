/**
 * What the query functions read from: a better-sqlite3 connection (or a StoreDb holding one), with
 * a per-connection cache of prepared statements so a caller asking many questions (the benchmark,
 * a long session) pays for each SQL text's compilation once.
 */
import type Database from 'better-sqlite3';

export type HistoryReader = Database.Database | { readonly sqlite: Database.Database };

const statementCache = new WeakMap<Database.Database, Map<string, Database.Statement>>();

export function sqliteOf(db: HistoryReader): Database.Database {
  return 'sqlite' in db ? db.sqlite : db;
}

/** A prepared statement for `sql` on this connection, compiled once and reused. */
export function cachedStatement<Row = unknown>(db: HistoryReader, sql: string): Database.Statement<unknown[], Row> {
  const sqlite = sqliteOf(db);
  let cache = statementCache.get(sqlite);
  if (cache === undefined) {
    cache = new Map();
    statementCache.set(sqlite, cache);
  }
  let statement = cache.get(sql);
  if (statement === undefined) {
    statement = sqlite.prepare(sql);
    cache.set(sql, statement);
  }
  return statement as Database.Statement<unknown[], Row>;
}

/** An instant given as a Date or an ISO string, as the stored text form (ISO-8601 UTC with ms). */
export function isoOf(at: Date | string): string {
  return typeof at === 'string' ? at : at.toISOString();
}
