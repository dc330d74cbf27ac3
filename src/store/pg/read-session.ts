/**
 * One read of a Postgres history by a query command: its own session, one `REPEATABLE READ, READ
 * ONLY` transaction (every statement of the command sees the same history, and none can write),
 * and a `statement_timeout` so no question can hold the server for long. The session is ended
 * afterwards, so nothing set in it outlives the command.
 *
 * The read SQL is shared with SQLite (src/query/*.ts) and written with SQLite's parameters: `?` in
 * order and `@name`. `numberParameters` renumbers them to Postgres' `$1, $2, …`.
 */
import type pg from 'pg';
import { TierwatchError } from '../../errors.ts';
import { pendingAfter, readJournal, type AppliedRow } from '../migrations.ts';
import { connectPg, describePgUrl } from './connection.ts';
import { defaultPgMigrationsFolder, PG_MIGRATIONS_SCHEMA, PG_MIGRATIONS_TABLE } from './migrate.ts';

/** How long one statement of a query command may run: far beyond any answer of a history's size. */
export const READ_STATEMENT_TIMEOUT_MS = 60_000;

const QUERY_CANCELED = '57014';
const UNDEFINED_TABLE = '42P01';

/**
 * `sql` with its `?` and `@name` parameters as `$n`, and the values in that order. A name used
 * twice is one parameter. Quoted text ('…', "…") is left alone.
 */
export function numberParameters(
  sql: string,
  named: Record<string, unknown>,
  positional: readonly unknown[],
): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const numbers = new Map<string, number>();
  let next = 0;
  const text = sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|\?|@([A-Za-z_]\w*)/g, (match, name: string | undefined) => {
    if (match.startsWith("'") || match.startsWith('"')) return match;
    if (name === undefined) {
      if (next >= positional.length) {
        throw new TierwatchError('INTERNAL', 'too few parameters for the SQL (this is a bug)');
      }
      values.push(positional[next++]);
      return `$${values.length}`;
    }
    let number = numbers.get(name);
    if (number === undefined) {
      if (!(name in named)) throw new TierwatchError('INTERNAL', `no value for @${name} (this is a bug)`);
      values.push(named[name]);
      number = values.length;
      numbers.set(name, number);
    }
    return `$${number}`;
  });
  return { text, values };
}

/** Rows fetched from a cursor at a time: memory stays bounded, and a round trip costs little per row. */
export const CURSOR_BATCH_ROWS = 1000;

export class PgReadSession {
  readonly #client: pg.Client;
  readonly #where: string;
  #cursors = 0;

  private constructor(client: pg.Client, where: string) {
    this.#client = client;
    this.#where = where;
  }

  /** Connects and begins the read-only transaction. Throws DB_READ_FAILED naming the database (never its password). */
  static async open(url: string, options: { statementTimeoutMs?: number } = {}): Promise<PgReadSession> {
    const where = describePgUrl(url);
    let client: pg.Client;
    try {
      client = await connectPg(url, { applicationName: 'tierwatch read' });
    } catch (error) {
      throw new TierwatchError('DB_READ_FAILED', `Cannot connect to ${where}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const session = new PgReadSession(client, where);
    try {
      // One round trip: the timeout is a number of ours, not a value to bind. Then, as a read-only
      // SQLite open does, the schema's migrations against this tierwatch's: the views of a history
      // that is behind (or ahead) may not answer what this version asks.
      const timeout = Math.max(1, Math.round(options.statementTimeoutMs ?? READ_STATEMENT_TIMEOUT_MS));
      const results = (await client.query(
        `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = ${timeout}; ` +
          `SELECT hash, created_at FROM ${PG_MIGRATIONS_SCHEMA}.${PG_MIGRATIONS_TABLE}`,
      )) as unknown as pg.QueryResult[];
      const applied = results.at(-1)!.rows as AppliedRow[];
      const pending = pendingAfter(readJournal(defaultPgMigrationsFolder()), applied, where);
      if (pending > 0) {
        throw new TierwatchError(
          'DB_NEEDS_MIGRATION',
          `The database ${where} needs ${pending} migration(s) this tierwatch would apply: run \`tierwatch migrate\` (or start the daemon) once, then retry.`,
        );
      }
    } catch (error) {
      await session.close();
      throw session.#failure(error);
    }
    return session;
  }

  /** The rows of `sql` as objects (`raw`: as arrays in column order). */
  async rows<Row>(
    sql: string,
    named: Record<string, unknown> = {},
    positional: readonly unknown[] = [],
    options: { raw?: boolean } = {},
  ): Promise<Row[]> {
    const { text, values } = numberParameters(sql, named, positional);
    try {
      const result =
        options.raw === true
          ? await this.#client.query({ text, values, rowMode: 'array' })
          : await this.#client.query({ text, values });
      return result.rows as Row[];
    } catch (error) {
      throw this.#failure(error);
    }
  }

  /**
   * The rows of `sql` read lazily through a cursor, `batchRows` at a time, so a long answer (a year
   * of changes) is never held whole. The session is busy until the rows are read or the iteration
   * is given up (which closes the cursor).
   */
  async *stream<Row>(
    sql: string,
    named: Record<string, unknown> = {},
    positional: readonly unknown[] = [],
    batchRows: number = CURSOR_BATCH_ROWS,
  ): AsyncGenerator<Row> {
    const { text, values } = numberParameters(sql, named, positional);
    this.#cursors += 1;
    const cursor = `tierwatch_rows_${this.#cursors}`;
    try {
      await this.#client.query({ text: `DECLARE ${cursor} NO SCROLL CURSOR FOR ${text}`, values });
    } catch (error) {
      throw this.#failure(error);
    }
    try {
      for (;;) {
        let batch: Row[];
        try {
          batch = (await this.#client.query(`FETCH ${batchRows} FROM ${cursor}`)).rows as Row[];
        } catch (error) {
          throw this.#failure(error);
        }
        yield* batch;
        if (batch.length < batchRows) return;
      }
    } finally {
      await this.#client.query(`CLOSE ${cursor}`).catch(() => {});
    }
  }

  /**
   * Ends the session, which ends its transaction; never throws. The server's goodbye is not awaited:
   * it costs a query command about 10 ms and tells it nothing (the transaction wrote nothing).
   */
  close(): Promise<void> {
    void this.#client.end().catch(() => {});
    return Promise.resolve();
  }

  #failure(error: unknown): TierwatchError {
    if (error instanceof TierwatchError) return error;
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : String(error);
    if (code === UNDEFINED_TABLE) {
      return new TierwatchError(
        'DB_NEEDS_MIGRATION',
        `The database ${this.#where} holds no tierwatch history (${message}): run \`tierwatch migrate\` against it first.`,
        { cause: error },
      );
    }
    if (code === QUERY_CANCELED) {
      return new TierwatchError(
        'DB_READ_FAILED',
        `Reading ${this.#where} took longer than its statement timeout and was stopped: ${message}`,
        { cause: error },
      );
    }
    return new TierwatchError('DB_READ_FAILED', `Cannot read ${this.#where}: ${message}`, { cause: error });
  }
}
