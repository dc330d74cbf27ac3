/**
 * Connections to a Postgres history: the one place that configures `pg` (node-postgres).
 *
 * Values are read back as the SQLite store reads them, so both backends give the same answers:
 * - bigint (ids, epoch ms) as a JS number, not node-postgres' default string (they stay far below
 *   2^53: ids count runs and versions, epoch ms reach 2^53 in the year 287,396);
 * - timestamptz as the ISO-8601 text `Date#toISOString()` makes (UTC, milliseconds), the text the
 *   SQLite tables hold;
 * - double precision as the same 8-byte double (node-postgres' default; Postgres 12+ sends the
 *   shortest text that round-trips).
 *
 * A URL may hold a password: it is never logged or put in a message; `describePgUrl` gives the
 * printable form.
 */
import pg from 'pg';

const INT8_OID = 20;
const TIMESTAMPTZ_OID = 1184;

const parseTimestamptz = pg.types.getTypeParser(TIMESTAMPTZ_OID, 'text') as (value: string) => Date;

/** The type parsers every tierwatch connection uses (see the module comment). */
export const PG_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format === undefined || format === 'text') {
      if (oid === INT8_OID) return (value: string) => Number(value);
      if (oid === TIMESTAMPTZ_OID) return (value: string) => parseTimestamptz(value).toISOString();
    }
    return pg.types.getTypeParser(oid, format) as (value: string) => unknown;
  }) as pg.CustomTypesConfig['getTypeParser'],
};

export interface PgConnectOptions {
  /** Shown in pg_stat_activity, so an operator can tell tierwatch's sessions apart. */
  applicationName?: string;
  connectionTimeoutMillis?: number;
}

function config(url: string, options: PgConnectOptions): pg.ClientConfig {
  return {
    connectionString: url,
    types: PG_TYPES,
    application_name: options.applicationName ?? 'tierwatch',
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
  };
}

/**
 * One connected client (one session), e.g. for work that needs a session of its own such as the
 * migration lock. The caller ends it. Errors the socket raises while the client is idle are
 * swallowed here: the next query on it fails and reports them.
 */
export async function connectPg(url: string, options: PgConnectOptions = {}): Promise<pg.Client> {
  const client = new pg.Client(config(url, options));
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** A pool of sessions; the caller ends it. An idle session the server drops is replaced silently. */
export function createPgPool(url: string, options: PgConnectOptions & { max?: number } = {}): pg.Pool {
  const pool = new pg.Pool({ ...config(url, options), max: options.max ?? 4 });
  pool.on('error', () => {});
  return pool;
}

/** One printable form of a URL for both the configuration and the store. */
export { describePgUrl } from '../../config-database.ts';
