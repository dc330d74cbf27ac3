/**
 * Where a long-lived reader (the web view of `tierwatch serve` and of the daemon) gets a
 * HistorySource for each request. The backends differ in what a request may hold:
 *
 * - SQLite: one read-only connection for the whole server, lent to one request at a time (a
 *   statement streaming an answer cannot be shared, and nothing here is slow enough for the queue
 *   to matter). Opening it checks the file at once, so a bad path stops the start.
 * - Postgres: a session of its own per request (PgHistorySource: one REPEATABLE READ READ ONLY
 *   transaction), ended when the request is answered, so every read of a request sees one snapshot
 *   and no transaction stays open between requests; a few requests run side by side.
 *
 * The Postgres code is loaded only for a Postgres history.
 */
import type { DatabaseTarget } from '../config-database.ts';
import { openDatabase } from '../store/db.ts';
import { SqliteHistorySource, type HistorySource } from './source.ts';

/** Requests a Postgres-backed view answers at once (each holds one connection while it runs). */
export const PG_CONCURRENT_REQUESTS = 4;

export interface HistoryOpener {
  /** The history as it may be shown (a path, or the URL without its password). */
  readonly name: string;
  /** How many requests may hold a source at once. */
  readonly concurrency: number;
  /** A source for one request; the caller closes it when the request is answered. */
  open(): Promise<HistorySource>;
  /** Releases what the opener holds (the SQLite connection). */
  close(): void;
}

/** The SQLite history at `path`, opened read-only now (throws its TierwatchError when it cannot). */
export function sqliteOpener(path: string): HistoryOpener {
  const db = openDatabase(path, { readonly: true });
  // Closing the lent source is a no-op: the connection is the server's, closed by close().
  const source = new SqliteHistorySource(db);
  return {
    name: path,
    concurrency: 1,
    open: () => Promise.resolve(source),
    close: () => db.close(),
  };
}

/** The opener of the configured history, either backend. */
export async function historyOpener(target: DatabaseTarget): Promise<HistoryOpener> {
  if (target.kind === 'sqlite') return sqliteOpener(target.path);
  const { PgHistorySource } = await import('../store/pg/queries.ts');
  const url = target.url;
  return {
    name: url.display,
    concurrency: PG_CONCURRENT_REQUESTS,
    open: () => PgHistorySource.open(url.reveal()),
    close: () => {},
  };
}
