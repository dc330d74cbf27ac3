/**
 * Where the fault catalogue (faults.ts) meets a `get_available_leverage_levels` request: the faults
 * that fire at a page request (list modes, delay, drop, silence, echo, error reply, bad frames,
 * malformed rows) and those that follow a written page (list shifts, drops). The hostile behaviours
 * that add frames around a normal answer are planned in hostile.ts.
 */
import { drop, send, sendError, sleep, type Connection } from './connection.ts';
import type { SimContext } from './context.ts';
import type { Fault, FaultOf } from './faults.ts';
import { echoText, listFrame, rateLimitedMessage, wireRow } from './frames.ts';
import { cloneTier, makeTier, type SimTier } from './universe.ts';

/** The depth of a `deep` bad frame: far beyond any stack a recursive walk of it could use. */
const DEEP_NESTING = 200_000;
const DEFAULT_OVERSIZED_BYTES = 8 * 1024 * 1024;

/** The faults fired by one page request, taken from the queue at once; `of(kind)` finds one by kind. */
export interface FiredPageFaults {
  of<K extends Fault['kind']>(kind: K): FaultOf<K> | undefined;
}

/** Takes every fault that fires at request `page` (an `echo` only when it is aimed at pages). */
export function takePageFaults(ctx: SimContext, page: number): FiredPageFaults {
  const fired = ctx.faults.take(
    [
      'infinite_list',
      'empty_list',
      'delay_page',
      'drop_at_page',
      'never_answer_page',
      'error_reply',
      'bad_frame',
      'malformed_row',
      'echo',
    ],
    (f) => (f.kind !== 'echo' || f.at === 'page') && (!('page' in f) || f.page === undefined || f.page === page),
  );
  return { of: <K extends Fault['kind']>(kind: K) => fired.find((f) => f.kind === kind) as FaultOf<K> | undefined };
}

/**
 * Applies the faults that act before a page is built: list modes, delay, drop, no answer, echo,
 * error reply. True when the page must not be answered normally (dropped, withheld or answered).
 */
export async function preemptPage(
  ctx: SimContext,
  conn: Connection,
  fired: FiredPageFaults,
  page: number,
  message: Record<string, unknown>,
): Promise<boolean> {
  if (fired.of('infinite_list')) conn.listMode = 'infinite';
  if (fired.of('empty_list')) conn.listMode = 'empty';
  const delay = fired.of('delay_page');
  if (delay) {
    ctx.log.info({ connection: conn.id, page, ms: delay.ms }, 'fault: page delayed');
    await sleep(conn, delay.ms);
    if (conn.closed) return true;
  }
  const dropped = fired.of('drop_at_page');
  if (dropped) {
    drop(ctx, conn, dropped.closeCode, `dropped at page ${page}`);
    return true;
  }
  if (fired.of('never_answer_page')) {
    ctx.log.info({ connection: conn.id, page }, 'fault: page left unanswered');
    return true;
  }
  const echo = fired.of('echo');
  if (echo) {
    const encoding = echo.encoding ?? 'raw';
    const quoted = `request ${echoText(JSON.stringify(message), encoding)} refused on the session opened by ${echoText(conn.authText ?? '', encoding)}`;
    sendError(ctx, conn, echo.code ?? 'InvalidParameter', quoted, message);
    return true;
  }
  const error = fired.of('error_reply');
  if (error) {
    const hint =
      error.code === 'RateLimited' ? rateLimitedMessage(error.retryAfterMs ?? 250) : `injected ${error.code}`;
    ctx.log.info({ connection: conn.id, page, code: error.code }, 'fault: error reply');
    sendError(ctx, conn, error.code, error.message ?? hint, message);
    return true;
  }
  return false;
}

/** A `bad_frame` fault's frame, sent instead of the page. */
export function sendBadFrame(
  ctx: SimContext,
  conn: Connection,
  fault: FaultOf<'bad_frame'>,
  rows: readonly SimTier[],
  page: number,
): void {
  ctx.log.info({ connection: conn.id, page, frame: fault.frame }, 'fault: bad frame');
  switch (fault.frame) {
    case 'non_json':
      return send(conn, 'this is not JSON {');
    case 'wrong_shape':
      return send(conn, JSON.stringify({ available_leverage_levels_response: { rows: 'not an array' } }));
    case 'binary':
      return send(conn, Buffer.from([0x00, 0x01, 0x02, 0x03, 0xff]));
    case 'unexpected_key':
      return send(conn, JSON.stringify({ unexpected_response: rows.map((t) => wireRow(t, ctx.legacy)) }));
    case 'deep':
      return send(
        conn,
        `{"available_leverage_levels_response":[${'['.repeat(DEEP_NESTING)}${']'.repeat(DEEP_NESTING)}]}`,
      );
    case 'oversized': {
      const padding = 'x'.repeat(fault.bytes ?? DEFAULT_OVERSIZED_BYTES);
      return send(
        conn,
        JSON.stringify({ available_leverage_levels_response: rows.map((t) => wireRow(t, ctx.legacy)), padding }),
      );
    }
  }
}

/** The page's JSON with row `index` replaced by the fault's row (appended when the page is shorter). */
export function malformedPageJson(
  ctx: SimContext,
  conn: Connection,
  fault: FaultOf<'malformed_row'>,
  rows: readonly SimTier[],
  page: number,
): string {
  const wire: unknown[] = rows.map((t) => wireRow(t, ctx.legacy));
  const index = Math.min(fault.index ?? 0, wire.length);
  wire.splice(index, index < wire.length ? 1 : 0, fault.row);
  ctx.log.info({ connection: conn.id, page, index }, 'fault: malformed row');
  return listFrame('available_leverage_levels_response', wire);
}

/**
 * Faults that follow a page. List shifts happen as soon as the page is queued (before the client
 * can ask for the next one); drops wait until the page is written, so the client receives it.
 */
export function afterPageWritten(
  ctx: SimContext,
  conn: Connection,
  page: number,
  rowCount: number,
  stage: 'queued' | 'written',
): void {
  if (stage === 'queued') {
    for (const fault of ctx.faults.take(['shift_insert', 'shift_delete'], (f) => f.afterPage === page)) {
      shiftList(ctx, conn, fault);
    }
    return;
  }
  const drops = ctx.faults.take(['drop_before_page', 'drop_after_last_page'], (f) =>
    f.kind === 'drop_before_page' ? f.page === page + 1 : rowCount === 0,
  );
  const first = drops[0];
  if (first && !conn.closed) {
    drop(
      ctx,
      conn,
      first.closeCode,
      first.kind === 'drop_before_page' ? `dropped before page ${page + 1}` : 'dropped after the last page',
    );
  }
}

function shiftList(ctx: SimContext, conn: Connection, fault: FaultOf<'shift_insert' | 'shift_delete'>): void {
  const account = conn.account!;
  const book = ctx.book;
  const first = book.rows(account)[0];
  if (fault.kind === 'shift_delete') {
    if (first === undefined) return;
    ctx.log.info(
      { connection: conn.id, symbol: first.symbol, leverage: first.leverage },
      'fault: row deleted before the offset',
    );
    book.removeTier(account, first.symbol, first.leverage);
    return;
  }
  let tier = fault.tier === undefined ? undefined : cloneTier(fault.tier);
  if (tier === undefined) {
    // Half a step above the first row's leverage sorts right after it: before any offset >= 2.
    const symbol = first?.symbol ?? 'AAPL-USD';
    let leverage = Number(first?.leverage ?? 1) + 0.5;
    while (book.find(account, symbol, leverage) !== undefined) leverage += 0.25;
    tier = makeTier(symbol, leverage, 200_000);
  }
  ctx.log.info(
    { connection: conn.id, symbol: tier.symbol, leverage: tier.leverage },
    'fault: row inserted before the offset',
  );
  book.addTier(account, tier);
}
