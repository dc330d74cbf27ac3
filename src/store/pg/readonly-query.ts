/**
 * An analyst's SQL against a shared Postgres history, read-only: the Postgres side of
 * `tierwatch query` (the command's deadline, signals and batches: query-run.ts).
 *
 * Two locks, as on SQLite: the same text guard first (src/query/readonly-sql.ts: one statement,
 * SELECT / WITH / VALUES / EXPLAIN, refused with the same USAGE messages), then Postgres itself: the
 * statement runs in a `READ ONLY` transaction, so whatever slips past the guard (`WITH d AS (DELETE
 * …) SELECT …`, a function that writes) is refused by the server and nothing is written. A
 * `statement_timeout` stops a runaway statement on the server (QUERY_TIMEOUT, the SQLite path's
 * message). The session is our own and is ended afterwards, so nothing the statement set (a
 * setting, an advisory lock) outlives it. The extended protocol refuses a second statement
 * smuggled into the text.
 *
 * Rows come back as the SQLite path gives them: arrays in column order, with the same JavaScript
 * values — bigint as a number and timestamptz as ISO text (the connection's parsers), numeric as a
 * number, boolean as 1 / 0, timestamp and date as their text.
 */
import pg from 'pg';
import { TierwatchError } from '../../errors.ts';
import { checkReadOnlyText } from '../../query/readonly-sql.ts';
import { connectPg, describePgUrl, PG_TYPES } from './connection.ts';

const BOOL_OID = 16;
const DATE_OID = 1082;
const TIMESTAMP_OID = 1114;
const NUMERIC_OID = 1700;

/** SQLite's answers for the types SQLite has no twin of (see the module comment). */
const QUERY_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format === undefined || format === 'text') {
      if (oid === NUMERIC_OID) return (value: string) => Number(value);
      if (oid === BOOL_OID) return (value: string) => (value === 't' ? 1 : 0);
      if (oid === DATE_OID || oid === TIMESTAMP_OID) return (value: string) => value;
    }
    return PG_TYPES.getTypeParser(oid, format) as (value: string) => unknown;
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** SQLSTATEs: a write in a read-only transaction; a statement cancelled (our statement_timeout). */
const READ_ONLY_SQL_TRANSACTION = '25006';
const QUERY_CANCELED = '57014';
/** SQLSTATE classes that are the statement's own mistake: data exceptions, constraint, syntax or access. */
const STATEMENT_CLASSES = new Set(['22', '23', '2B', '42', '0A', '21', '44']);
/** A second statement in the text, refused by the extended protocol. */
const MULTIPLE_COMMANDS = /cannot insert multiple commands into a prepared statement/;

export interface PgQueryLimits {
  timeoutMs: number;
  /** How the timeout is shown in its error message (`30s`). */
  timeoutText: string;
}

export interface PgQueryResult {
  columns: string[];
  rows: unknown[][];
}

/**
 * Runs one read-only statement against the Postgres history at `url` and returns its columns and
 * rows. Throws TierwatchError: USAGE (refused by the guard, invalid, failing at run time, or
 * writing — refused by the read-only transaction), QUERY_TIMEOUT, DB_READ_FAILED when the database
 * cannot be reached or read.
 */
export async function runPgReadOnlyQuery(url: string, sql: string, limits: PgQueryLimits): Promise<PgQueryResult> {
  const { columns, rows } = await readPgQuery(url, sql, limits);
  return { columns, rows };
}

/** What `tierwatch query` asks besides the rows. */
export interface PgQueryOptions {
  /** Also read the last successful sweep's observed_at, in the same transaction (the table footer). */
  footer?: boolean;
  /** Called with the connected client, so that a caller's deadline can end it. */
  connected?: (client: pg.Client) => void;
  /**
   * Hands the rows over in batches instead of returning them: a SELECT, WITH or VALUES is read
   * through a cursor, `CURSOR_ROWS` at a time, and the next batch is fetched only once this
   * resolves (true; false stops the read: the reader has gone). Called at least once, so that the
   * columns are known even without rows. Other statements (EXPLAIN) come in one batch.
   */
  onRows?: (columns: string[], rows: unknown[][]) => Promise<boolean>;
}

/** Rows a cursor hands over at a time, as the SQLite child's batches. */
const CURSOR_ROWS = 1000;

/** Statements a cursor can read (EXPLAIN cannot be declared as one). */
const CURSOR_STATEMENT = /^\s*(?:select|with|values)\b/i;

/** runPgReadOnlyQuery, with the footer's instant when asked for (null otherwise, or when none). */
export async function readPgQuery(
  url: string,
  sql: string,
  limits: PgQueryLimits,
  options: PgQueryOptions = {},
): Promise<PgQueryResult & { lastObservedAt: string | null; pid: number; complete: boolean }> {
  // Throws USAGE, with the SQLite path's messages, for an empty input and for anything but a read.
  const pieces = checkReadOnlyText(sql);
  if (pieces.length > 1) {
    throw new TierwatchError(
      'USAGE',
      `Give one statement at a time (got ${pieces.length}); each is run and printed on its own.`,
    );
  }
  const piece = pieces[0]!;
  let client: pg.Client;
  try {
    client = await connectPg(url, { applicationName: 'tierwatch query' });
    options.connected?.(client);
  } catch (error) {
    throw new TierwatchError('DB_READ_FAILED', `Cannot connect to ${describePgUrl(url)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    await client.query('BEGIN READ ONLY');
    // And, where the server has it (Postgres 14+), a check every second that the client is still
    // there: a statement whose command was killed (kill -9) ends within a second, not at its timeout.
    await client.query(
      `SELECT set_config('statement_timeout', $1, true), ` +
        `(SELECT set_config(name, '1000', true) FROM pg_settings WHERE name = 'client_connection_check_interval')`,
      [`${Math.max(1, Math.round(limits.timeoutMs))}ms`],
    );
    const read = (text: string) => {
      // The extended protocol refuses a second statement smuggled into the text.
      const config: pg.QueryArrayConfig & { queryMode: 'extended' } = {
        text,
        rowMode: 'array',
        types: QUERY_TYPES,
        queryMode: 'extended',
      };
      return client.query(config);
    };
    let columns: string[] = [];
    let rows: unknown[][] = [];
    let complete = true;
    if (options.onRows !== undefined && CURSOR_STATEMENT.test(piece.code)) {
      await read(`DECLARE tierwatch_query NO SCROLL CURSOR FOR ${piece.text}`);
      for (;;) {
        const batch = await read(`FETCH ${CURSOR_ROWS} FROM tierwatch_query`);
        columns = batch.fields.map((field) => field.name);
        if (!(await options.onRows(columns, batch.rows as unknown[][]))) {
          complete = false;
          break;
        }
        if (batch.rows.length < CURSOR_ROWS) break;
      }
    } else {
      const result = await read(piece.text);
      columns = result.fields.map((field) => field.name);
      rows = result.rows as unknown[][];
      if (options.onRows !== undefined) {
        complete = await options.onRows(columns, rows);
        rows = [];
      }
    }
    let lastObservedAt: string | null = null;
    if (options.footer === true && complete) {
      const last = await client.query<{ at: string | null }>(
        `SELECT max(observed_at) AS at FROM run_ledger WHERE status = 'ok'`,
      );
      lastObservedAt = last.rows[0]?.at ?? null;
    }
    await client.query('ROLLBACK');
    return {
      columns,
      rows,
      lastObservedAt,
      pid: (client as pg.Client & { processID: number }).processID,
      complete,
    };
  } catch (error) {
    throw toPgQueryError(error, limits);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Maps what running the statement threw, as toQueryError does for SQLite. */
function toPgQueryError(error: unknown, limits: PgQueryLimits): TierwatchError {
  if (error instanceof TierwatchError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === QUERY_CANCELED) {
    return new TierwatchError(
      'QUERY_TIMEOUT',
      `The statement ran longer than --timeout ${limits.timeoutText} and was stopped. Narrow it (a WHERE clause, a LIMIT) or give a longer --timeout.`,
      { cause: error, details: { timeoutMs: limits.timeoutMs } },
    );
  }
  if (code === READ_ONLY_SQL_TRANSACTION) {
    return new TierwatchError('USAGE', `The statement failed: ${message} (\`tierwatch query\` only reads).`, {
      cause: error,
      details: { sqlState: code },
    });
  }
  if ((typeof code === 'string' && STATEMENT_CLASSES.has(code.slice(0, 2))) || MULTIPLE_COMMANDS.test(message)) {
    return new TierwatchError('USAGE', `The statement failed: ${message}.`, {
      cause: error,
      details: { sqlState: code },
    });
  }
  return new TierwatchError('DB_READ_FAILED', `Postgres could not run the query: ${message}`, { cause: error });
}
