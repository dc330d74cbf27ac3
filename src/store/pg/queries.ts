/**
 * The query commands' questions against a Postgres history: the HistorySource of
 * src/query/source.ts. Each question is the SQLite one — built by the same function in the Postgres
 * dialect (src/query/dialect.ts), its rows shaped by the same code — so both backends give the same
 * rows in the same order. What Postgres does not need is left out: SQLite's index routes (its
 * planner chooses for itself) and the prepared-statement cache (one session per command).
 *
 * Everything runs in one read-only transaction with a statement timeout (read-session.ts).
 */
import type { AccountHealth } from '../../collect/health.ts';
import { checkHistoryAt, type HistoryBounds } from '../../query/bounds.ts';
import {
  baselineCountSql,
  changesSql,
  toFeedRow,
  type FeedFilters,
  type FeedRow,
  type FeedViewRow,
  type TimeWindow,
} from '../../query/changes.ts';
import { POSTGRES } from '../../query/dialect.ts';
import { diffInstants, diffOfSides, diffSql, type DiffRow, type SideRow } from '../../query/diff.ts';
import type { Filters } from '../../query/filters.ts';
import { historySql } from '../../query/history.ts';
import { runsSql, type RunRow, type RunsQuery } from '../../query/runs.ts';
import { snapshotSql, toVersionRow, type StoredVersion, type VersionRow } from '../../query/snapshot.ts';
import {
  LAST_SUCCESS_SQL,
  OK_ACCOUNTS_SQL,
  RUN_INSTANT_SQL,
  type HistorySource,
  type RunInstant,
} from '../../query/source.ts';
import { suggestionSql, suggestionsFor } from '../../query/symbol-hint.ts';
import { PgReadSession } from './read-session.ts';

/** The SQL of the two bounds: run_ledger's timestamptz comes back as ISO text (connection.ts). */
const BOUNDS_SQL =
  `SELECT (SELECT min(observed_at) FROM run_ledger WHERE status = 'ok') AS first, ` +
  `(SELECT max(observed_at) FROM run_ledger WHERE status = 'ok') AS last`;

export class PgHistorySource implements HistorySource {
  readonly #session: PgReadSession;
  #bounds: Promise<HistoryBounds | null> | undefined;

  private constructor(session: PgReadSession) {
    this.#session = session;
  }

  /** Connects to the history at `url` (DB_READ_FAILED naming it without its password when it cannot). */
  static async open(url: string, options: { statementTimeoutMs?: number } = {}): Promise<PgHistorySource> {
    return new PgHistorySource(await PgReadSession.open(url, options));
  }

  /**
   * Read once per source: its session is one REPEATABLE READ transaction, so a second read could
   * only give the same answer, and it would cost every snapshot and diff a round trip more.
   */
  bounds(): Promise<HistoryBounds | null> {
    this.#bounds ??= this.#readBounds();
    return this.#bounds;
  }

  async #readBounds(): Promise<HistoryBounds | null> {
    const [row] = await this.#session.rows<{ first: string | null; last: string | null }>(BOUNDS_SQL);
    if (!row?.first || !row.last) return null;
    return { first_observed_at: row.first, last_observed_at: row.last };
  }

  async runInstant(runId: number): Promise<RunInstant | undefined> {
    const [row] = await this.#session.rows<RunInstant>(RUN_INSTANT_SQL, {}, [runId]);
    return row;
  }

  async snapshot(at: string, filters: Filters): Promise<VersionRow[]> {
    checkHistoryAt(await this.bounds(), at);
    const { sql, params } = snapshotSql('symbol', filters, POSTGRES);
    const rows = await this.#session.rows<StoredVersion>(sql, { at: Date.parse(at) }, params);
    return rows.map(toVersionRow);
  }

  async diff(from: string, to: string, filters: Filters): Promise<DiffRow[]> {
    const { fromIso, toIso } = diffInstants(from, to);
    checkHistoryAt(await this.bounds(), fromIso);
    const sql = diffSql(filters, { after: 'symbol', before: 'symbol' }, POSTGRES);
    const named = { from: Date.parse(fromIso), to: Date.parse(toIso) };
    const before = await this.#session.rows<SideRow>(sql.before, named, sql.params, { raw: true });
    const after = await this.#session.rows<SideRow>(sql.after, named, sql.params, { raw: true });
    return diffOfSides(before, after);
  }

  changes(window: TimeWindow, filters: Filters, feed: FeedFilters): Promise<AsyncIterable<FeedRow>> {
    const { sql, named, params } = changesSql(window, filters, feed, undefined, POSTGRES);
    const rows = this.#session.stream<FeedViewRow>(sql, named, params);
    return Promise.resolve(
      (async function* () {
        for await (const row of rows) yield toFeedRow(row);
      })(),
    );
  }

  async baselineRows(window: TimeWindow, filters: Filters, feed: FeedFilters): Promise<number> {
    const { sql, named, params } = baselineCountSql(window, filters, feed, POSTGRES);
    const [row] = await this.#session.rows<{ n: number }>(sql, named, params);
    return row?.n ?? 0;
  }

  async history(symbol: string, filters: Filters): Promise<VersionRow[]> {
    const { sql, params } = historySql(symbol, filters, POSTGRES);
    return (await this.#session.rows<StoredVersion>(sql, {}, params)).map(toVersionRow);
  }

  async runs(query: RunsQuery): Promise<RunRow[]> {
    const { sql, params } = runsSql(query, POSTGRES);
    return (await this.#session.rows<RunRow>(sql, {}, params)).reverse();
  }

  async okAccounts(): Promise<string[]> {
    return (await this.#session.rows<[string]>(OK_ACCOUNTS_SQL, {}, [], { raw: true })).map(([account]) => account);
  }

  async lastSuccesses(accountIds: readonly string[]): Promise<AccountHealth[]> {
    const health: AccountHealth[] = [];
    for (const accountId of accountIds) {
      const [row] = await this.#session.rows<{ at: string | null }>(LAST_SUCCESS_SQL, {}, [accountId]);
      health.push({ accountId, lastSuccessAt: row?.at ?? null });
    }
    return health;
  }

  async symbolSuggestions(filters: Filters): Promise<string[]> {
    const sql = suggestionSql(POSTGRES);
    return suggestionsFor(
      filters,
      POSTGRES,
      async (pattern) => (await this.#session.rows(sql.exists, {}, [pattern])).length > 0,
      async (pattern, limit) =>
        (await this.#session.rows<[string]>(sql.folded, {}, [pattern, pattern, limit], { raw: true })).map(
          ([symbol]) => symbol,
        ),
    );
  }

  async close(): Promise<void> {
    await this.#session.close();
  }
}
