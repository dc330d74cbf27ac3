/**
 * The simulator's leverage requests, once authenticated: `get_available_leverage_levels` (paged,
 * capped at `maxPageSize`, with the page faults of page-faults.ts and the hostile plans of
 * hostile.ts), `get_user_leverage` (one row per symbol) and `set_user_leverage`.
 */
import { send, sendError, sleep, type Connection } from './connection.ts';
import type { SimContext } from './context.ts';
import { listFrame, wireRow } from './frames.ts';
import { afterPageWritten, malformedPageJson, preemptPage, sendBadFrame, takePageFaults } from './page-faults.ts';
import type { SimPageRequest } from './server.ts';
import { makeTier, type SimTier } from './universe.ts';

const RECENT_REQUESTS = 100;

export type ListRequestType = SimPageRequest['type'];

export class LeverageDesk {
  readonly #ctx: SimContext;
  readonly #maxPageSize: number;
  readonly #pageCache = new Map<string, { version: number; json: string }>();
  /** account → symbol → leverage chosen with set_user_leverage. */
  readonly #userLeverage = new Map<string, Map<string, string>>();

  constructor(ctx: SimContext, maxPageSize: number) {
    this.#ctx = ctx;
    this.#maxPageSize = maxPageSize;
  }

  /** `limit`/`offset` as integers, or an InvalidParameter frame and null. Null/absent take the defaults. */
  #readPaging(
    conn: Connection,
    message: Record<string, unknown>,
    params: Record<string, unknown>,
  ): { limit: number; offset: number } | null {
    const limit = params['limit'] ?? 1000;
    const offset = params['offset'] ?? 0;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit <= 0) {
      sendError(
        this.#ctx,
        conn,
        'InvalidParameter',
        `limit must be a positive integer, got ${JSON.stringify(limit)}`,
        message,
      );
      return null;
    }
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) {
      sendError(
        this.#ctx,
        conn,
        'InvalidParameter',
        `offset must be a non-negative integer, got ${JSON.stringify(offset)}`,
        message,
      );
      return null;
    }
    return { limit, offset };
  }

  /** Answers a list request; every valid one is counted and kept in `stats.lastRequests`. */
  async onList(
    conn: Connection,
    message: Record<string, unknown>,
    params: Record<string, unknown>,
    type: ListRequestType,
  ): Promise<void> {
    const ctx = this.#ctx;
    const paging = this.#readPaging(conn, message, params);
    if (paging === null) return;
    const account = conn.account!;
    const servedLimit = Math.min(paging.limit, this.#maxPageSize);
    const page = type === 'get_available_leverage_levels' ? ++conn.pages : 0;
    const request: SimPageRequest = {
      connection: conn.id,
      account,
      type,
      page,
      limit: paging.limit,
      servedLimit,
      offset: paging.offset,
      rows: -1,
    };
    ctx.stats.pageRequests++;
    ctx.stats.lastRequests.push(request);
    if (ctx.stats.lastRequests.length > RECENT_REQUESTS) ctx.stats.lastRequests.shift();

    if (type === 'get_user_leverage') {
      const rows = this.#userLeverageRows(account).slice(paging.offset, paging.offset + servedLimit);
      request.rows = rows.length;
      send(
        conn,
        listFrame(
          'user_leverage_response',
          rows.map((t) => wireRow(t, ctx.legacy)),
        ),
      );
      return;
    }

    const fired = takePageFaults(ctx, page);
    if (await preemptPage(ctx, conn, fired, page, message)) return;

    const plan = ctx.hostility.planPage(conn, page, paging.offset);
    for (const frame of plan.before) send(conn, frame);
    if (plan.delayMs > 0) {
      await sleep(conn, plan.delayMs);
      if (conn.closed) return;
    }
    if (plan.answer !== null) {
      request.rows = plan.answer.rows;
      return send(conn, plan.answer.json);
    }
    const rows = this.#pageRows(conn, paging.offset, plan.servedRows ?? servedLimit);
    const bad = fired.of('bad_frame');
    if (bad) return sendBadFrame(ctx, conn, bad, rows, page);
    const malformed = fired.of('malformed_row');
    const json = malformed
      ? malformedPageJson(ctx, conn, malformed, rows, page)
      : this.#pageJson(conn, account, paging.offset, servedLimit, rows);
    request.rows = rows.length;
    ctx.hostility.rememberPage(conn, json);
    send(conn, json, () => afterPageWritten(ctx, conn, page, rows.length, 'written'));
    afterPageWritten(ctx, conn, page, rows.length, 'queued');
  }

  /** The rows of one page, honouring the connection's list mode (normal, infinite, empty). */
  #pageRows(conn: Connection, offset: number, limit: number): SimTier[] {
    if (conn.listMode === 'empty') return [];
    const all = this.#ctx.book.rows(conn.account!);
    const rows = all.slice(offset, offset + limit);
    if (conn.listMode === 'infinite') {
      for (let i = Math.max(offset, all.length); rows.length < limit; i++) {
        rows.push(makeTier(`INF${String(i).padStart(9, '0')}-USD`, 1, 100_000));
      }
    }
    return rows;
  }

  #pageJson(conn: Connection, account: string, offset: number, limit: number, rows: readonly SimTier[]): string {
    const cacheable = this.#ctx.options.preserializePages === true && conn.listMode === 'normal';
    const key = `${account}\u0000${offset}\u0000${limit}`;
    const version = this.#ctx.book.version(account);
    if (cacheable) {
      const hit = this.#pageCache.get(key);
      if (hit !== undefined && hit.version === version) return hit.json;
    }
    const json = listFrame(
      'available_leverage_levels_response',
      rows.map((t) => wireRow(t, this.#ctx.legacy)),
    );
    if (cacheable) this.#pageCache.set(key, { version, json });
    return json;
  }

  /** One row per symbol: the chosen leverage, or the symbol's lowest. */
  #userLeverageRows(account: string): SimTier[] {
    const chosen = this.#userLeverage.get(account);
    const bySymbol = new Map<string, SimTier>();
    for (const tier of this.#ctx.book.rows(account)) {
      const pick = chosen?.get(tier.symbol);
      const current = bySymbol.get(tier.symbol);
      if (pick !== undefined ? Number(tier.leverage) === Number(pick) : current === undefined) {
        bySymbol.set(tier.symbol, tier);
      }
    }
    return [...bySymbol.values()];
  }

  /** Records the chosen leverage of a listed (symbol, leverage) and acknowledges it. */
  onSetLeverage(conn: Connection, message: Record<string, unknown>, params: Record<string, unknown>): void {
    const { symbol, leverage } = params;
    const account = conn.account!;
    if (
      typeof symbol !== 'string' ||
      typeof leverage !== 'number' ||
      this.#ctx.book.find(account, symbol, leverage) === undefined
    ) {
      sendError(this.#ctx, conn, 'InvalidParameter', 'unknown symbol or leverage level', message);
      return;
    }
    let chosen = this.#userLeverage.get(account);
    if (chosen === undefined) this.#userLeverage.set(account, (chosen = new Map<string, string>()));
    chosen.set(symbol, String(leverage));
    send(
      conn,
      this.#ctx.options.ackShape === 'ack'
        ? JSON.stringify({ ack: { incoming_message: message } })
        : '{"ack_response":true}',
    );
  }
}
