/**
 * The simulator's hostile behaviours (issue 10): what a real server may do and a careless client
 * does not expect — frames that answer nothing (notices, heartbeats sent as messages, message types
 * added later, errors about other requests), a stale answer sent again, pages that drip one row at
 * a time, pages larger than asked, and lists that never end with pages as big as we like.
 *
 * Kept apart from the handlers: handshake.ts and leverage.ts ask this module what to do at two
 * moments (around the auth answer, and before each page answer) and do the sending. Pure planning over the fault queue; the
 * state kept per connection (its mode, its last page) lives in a WeakMap keyed by the connection.
 */
import type { FaultOf, FaultQueue, PushKind } from './faults.ts';
import { errorFrame, type LegacyOptions } from './frames.ts';

/** What to do about one page request, beside answering it normally. */
export interface PagePlan {
  /** Frames to send before the answer. */
  before: string[];
  /** Wait this long before answering. */
  delayMs: number;
  /** Rows to serve instead of the (capped) limit, or null for the normal count. */
  servedRows: number | null;
  /** A whole answer to send instead of the normal page, with its row count. */
  answer: { json: string; rows: number } | null;
}

interface ConnectionState {
  lastPage: string | null;
  drip: { ms: number; rows: number } | null;
  bigPages: { rows: number; padding: number } | null;
}

/** A request type a real client might have sent on the same account, echoed in an error. */
function incomingFor(about: string): Record<string, unknown> {
  if (about === 'add_order') {
    return {
      type: 'add_order',
      params: {
        symbol: 'AAPL-USD',
        side: 'BUY',
        order_type: 'LIMIT',
        order_time_in_force: 'GTC',
        quantity: 10,
        price: 200,
        client_order_id: 'my-order-001',
      },
    };
  }
  return { type: about, params: {} };
}

/** The frames of each push kind, as a server could send them unasked. */
export function pushFrame(push: PushKind): string {
  switch (push) {
    case 'notice':
      return JSON.stringify({ notice: { message: 'Scheduled maintenance at 02:00 UTC', severity: 'info' } });
    case 'heartbeat':
      return JSON.stringify({ type: 'heartbeat' });
    case 'new_type':
      return JSON.stringify({ leaderboard_update: { rank: 1, user: 'someone' } });
    case 'subscription':
      return JSON.stringify({
        type: 'subscribed',
        connection_id: 'ee987ddf-822c-4356-b0d1-012314859b00',
        message_id: 1,
        channel: 'v4_balances',
        contents: [],
      });
    case 'authenticated':
      return '{"authenticated":true}';
  }
}

/** A synthetic tier row whose JSON is about 150 bytes plus `padding`. */
function bigRow(index: number, padding: number): string {
  const id = `${'p'.repeat(padding)}${index}`;
  return `{"id":"${id}","symbol":"BIG${String(index).padStart(9, '0')}-USD","initial_margin":1,"maintenance_margin":0.5,"max_notional":100000,"leverage":"1"}`;
}

export class Hostility {
  readonly #faults: FaultQueue;
  readonly #legacy: LegacyOptions;
  readonly #state = new WeakMap<object, ConnectionState>();

  constructor(faults: FaultQueue, legacy: LegacyOptions) {
    this.#faults = faults;
    this.#legacy = legacy;
  }

  #of(conn: object): ConnectionState {
    let state = this.#state.get(conn);
    if (state === undefined) this.#state.set(conn, (state = { lastPage: null, drip: null, bigPages: null }));
    return state;
  }

  #unsolicited(fault: FaultOf<'unknown_push' | 'unsolicited_error'>): string {
    if (fault.kind === 'unknown_push') return pushFrame(fault.push);
    const about = fault.about === undefined ? 'add_order' : fault.about;
    const code = fault.code ?? 'ServerError';
    return errorFrame(this.#legacy, code, `injected unsolicited ${code}`, about === null ? null : incomingFor(about));
  }

  /** Frames to send just before (`before_auth_answer`) or after (`after_auth_answer`) a successful auth answer. */
  aroundAuth(moment: 'before_auth_answer' | 'after_auth_answer'): string[] {
    return this.#faults
      .take(['unknown_push', 'unsolicited_error'], (f) => f.when === moment)
      .map((f) => this.#unsolicited(f));
  }

  /** Decides what page `page` (at `offset`) of this connection gets beside (or instead of) its normal answer. */
  planPage(conn: object, page: number, offset: number): PagePlan {
    const state = this.#of(conn);
    const plan: PagePlan = { before: [], delayMs: 0, servedRows: null, answer: null };
    const fired = this.#faults.take(
      ['unknown_push', 'unsolicited_error', 'stale_page', 'drip', 'oversized_page', 'endless_big_pages'],
      (f) =>
        ((f.kind !== 'unknown_push' && f.kind !== 'unsolicited_error') ||
          (f.when ?? 'before_page_answer') === 'before_page_answer') &&
        (!('page' in f) || f.page === undefined || f.page === page) &&
        (f.kind !== 'stale_page' || state.lastPage !== null),
    );
    for (const fault of fired) {
      switch (fault.kind) {
        case 'unknown_push':
        case 'unsolicited_error':
          plan.before.push(this.#unsolicited(fault));
          break;
        case 'stale_page':
          plan.before.push(state.lastPage!);
          break;
        case 'drip':
          state.drip = { ms: fault.ms, rows: fault.rows ?? 1 };
          break;
        case 'oversized_page':
          plan.servedRows = fault.rows;
          break;
        case 'endless_big_pages':
          state.bigPages = { rows: fault.rows ?? 20_000, padding: fault.padding ?? 0 };
          break;
      }
    }
    if (state.drip !== null) {
      plan.delayMs = state.drip.ms;
      plan.servedRows = state.drip.rows;
    }
    if (state.bigPages !== null) {
      // Row i of the endless list is the same on every read, so the pager's overlap check holds.
      const big = state.bigPages;
      const rows: string[] = [];
      for (let i = 0; i < big.rows; i++) rows.push(bigRow(offset + i, big.padding));
      plan.answer = { json: `{"available_leverage_levels_response":[${rows.join(',')}]}`, rows: big.rows };
    }
    return plan;
  }

  /** Remembers the page just sent on this connection, for a later stale repeat. */
  rememberPage(conn: object, json: string): void {
    this.#of(conn).lastPage = json;
  }
}
