/**
 * Faults the simulator can inject, for tests (`sim.inject(fault)`) and scenario files.
 *
 * A `Fault` is a discriminated union on `kind`. Each fault fires once by default; `times: n` lets it
 * fire n times and `persistent: true` forever (until `clearFaults()`). Pending faults are kept in
 * injection order: at each point of a connection's life, for each kind that can fire there, the
 * earliest pending fault of that kind whose condition holds fires (so two one-shot RateLimited faults
 * answer two consecutive pages). Faults are not tied to a connection: the first connection to reach
 * the condition consumes them.
 *
 * "Page N" is the N-th `get_available_leverage_levels` request on one connection, 1-based, counting
 * every request (a retry after RateLimited is a new page number). A fault with no `page` fires on the
 * next page request of any connection. Page faults never touch `get_user_leverage`.
 *
 * | kind                   | where it fires                  | effect |
 * |------------------------|---------------------------------|--------|
 * | `drop_before_page`     | after page N−1 is written (after auth success when N = 1) | socket destroyed (or closed with `closeCode`) before the client asks for page N |
 * | `drop_at_page`         | page N request                  | socket destroyed without an answer |
 * | `drop_after_last_page` | after an empty page is written  | socket destroyed |
 * | `delay_page`           | page N request                  | the answer is sent `ms` later |
 * | `never_answer_page`    | page N request                  | no answer at all |
 * | `never_answer_auth`    | auth message                    | no answer; the unauthenticated deadline still runs |
 * | `reject_auth`          | auth message, or the upgrade for mode `http_401` | auth refused whatever the credentials, in `mode` (default: the server's authFailureMode); mode `err_frame` answers with `code` (default PermissionDenied, e.g. RateLimited or ServerError) |
 * | `stop_pings`           | auth success                    | that connection is never pinged |
 * | `ignore_client_pings`  | auth success                    | the client's ping frames are not answered |
 * | `malformed_row`        | page N request                  | row `index` (default 0) of the page is replaced by `row` (any JSON value; appended if the page is empty) |
 * | `error_reply`          | page N request                  | an error frame with `code` instead of the page; RateLimited carries "Retry after <retryAfterMs>ms." (default 250) |
 * | `bad_frame`            | page N request                  | instead of the page: `non_json` text, `wrong_shape` JSON, a `binary` frame, an `unexpected_key` response, an `oversized` frame of about `bytes` (default 8 MiB), or a page nested 200,000 levels `deep` |
 * | `shift_insert`         | after page `afterPage` is written | a new tier sorting before the current offset is added to the account (a real, logged change) |
 * | `shift_delete`         | after page `afterPage` is written | the account's first tier is removed (a real, logged change) |
 * | `infinite_list`        | next page request               | that connection's list never ends: every page is full (synthetic distinct rows past the real ones) |
 * | `empty_list`           | next page request               | that connection's list is empty |
 *
 * Hostile servers (issue 10; behaviour in hostile.ts):
 *
 * | kind                   | where it fires                  | effect |
 * |------------------------|---------------------------------|--------|
 * | `unknown_push`         | page N request, or the auth answer (`when`) | a frame that answers nothing is sent first: a `notice`, a `heartbeat` sent as a message, a `new_type` of message, a `subscription` push envelope, a second `authenticated` |
 * | `unsolicited_error`    | page N request, or the auth answer (`when`) | an error frame with `code` (default ServerError) about `about` (a request type such as `add_order`; null = no echo) is sent first |
 * | `stale_page`           | page N request (N ≥ 2)          | the connection's previous page answer is sent again before the real one |
 * | `drip`                 | next page request               | from then on that connection answers every page with `rows` (default 1) row(s), each page `ms` late |
 * | `oversized_page`       | page N request                  | the page holds `rows` real rows from the offset, whatever the limit asked and the server cap |
 * | `endless_big_pages`    | next page request               | that connection's list never ends and every page holds `rows` (default 20,000) synthetic rows, each with `padding` extra bytes in its id |
 * | `echo`                 | auth message (`at: 'auth'`, default), or page N request (`at: 'page'`) | an error frame (`code`) whose message quotes the connection's auth message, signature and all (and at a page the request too), in `encoding` (raw, json, base64, base64url, hex); at auth the connection is then closed with 1008 |
 */
import type { SimTier } from './universe.ts';

export type AuthFailureMode = 'authenticated_false' | 'err_frame' | 'http_401' | 'close';
export const AUTH_FAILURE_MODES: readonly AuthFailureMode[] = ['authenticated_false', 'err_frame', 'http_401', 'close'];

export type BadFrameKind = 'non_json' | 'wrong_shape' | 'binary' | 'unexpected_key' | 'oversized' | 'deep';
export const BAD_FRAME_KINDS: readonly BadFrameKind[] = [
  'non_json',
  'wrong_shape',
  'binary',
  'unexpected_key',
  'oversized',
  'deep',
];

export type EchoEncoding = 'raw' | 'json' | 'base64' | 'base64url' | 'hex';
export const ECHO_ENCODINGS: readonly EchoEncoding[] = ['raw', 'json', 'base64', 'base64url', 'hex'];

export interface FaultRepeat {
  /** How many times the fault fires before it is used up (default 1). */
  times?: number;
  /** Fires every time its condition holds, until clearFaults(). */
  persistent?: boolean;
}

export type FaultSpec =
  | { kind: 'drop_before_page'; page: number; closeCode?: number }
  | { kind: 'drop_at_page'; page?: number; closeCode?: number }
  | { kind: 'drop_after_last_page'; closeCode?: number }
  | { kind: 'delay_page'; page?: number; ms: number }
  | { kind: 'never_answer_page'; page?: number }
  | { kind: 'never_answer_auth' }
  | { kind: 'reject_auth'; mode?: AuthFailureMode; code?: string }
  | { kind: 'stop_pings' }
  | { kind: 'ignore_client_pings' }
  | { kind: 'malformed_row'; page?: number; row: unknown; index?: number }
  | { kind: 'error_reply'; page?: number; code: string; message?: string; retryAfterMs?: number }
  | { kind: 'bad_frame'; page?: number; frame: BadFrameKind; bytes?: number }
  | { kind: 'shift_insert'; afterPage: number; tier?: SimTier }
  | { kind: 'shift_delete'; afterPage: number }
  | { kind: 'infinite_list' }
  | { kind: 'empty_list' }
  | { kind: 'unknown_push'; page?: number; when?: PushMoment; push: PushKind }
  | { kind: 'unsolicited_error'; page?: number; when?: PushMoment; code?: string; about?: string | null }
  | { kind: 'stale_page'; page?: number }
  | { kind: 'drip'; ms: number; rows?: number }
  | { kind: 'oversized_page'; page?: number; rows: number }
  | { kind: 'endless_big_pages'; rows?: number; padding?: number }
  | { kind: 'echo'; at?: 'auth' | 'page'; page?: number; encoding?: EchoEncoding; code?: string };

/** When an unsolicited frame is sent: before the answer to page N, or just before / after the auth answer. */
export type PushMoment = 'before_page_answer' | 'before_auth_answer' | 'after_auth_answer';
export const PUSH_MOMENTS: readonly PushMoment[] = ['before_page_answer', 'before_auth_answer', 'after_auth_answer'];
export type PushKind = 'notice' | 'heartbeat' | 'new_type' | 'subscription' | 'authenticated';
export const PUSH_KINDS: readonly PushKind[] = ['notice', 'heartbeat', 'new_type', 'subscription', 'authenticated'];

export type Fault = FaultRepeat & FaultSpec;
export type FaultKind = FaultSpec['kind'];
export type FaultOf<K extends FaultKind> = FaultRepeat & Extract<FaultSpec, { kind: K }>;

export const FAULT_KINDS: readonly FaultKind[] = [
  'drop_before_page',
  'drop_at_page',
  'drop_after_last_page',
  'delay_page',
  'never_answer_page',
  'never_answer_auth',
  'reject_auth',
  'stop_pings',
  'ignore_client_pings',
  'malformed_row',
  'error_reply',
  'bad_frame',
  'shift_insert',
  'shift_delete',
  'infinite_list',
  'empty_list',
  'unknown_push',
  'unsolicited_error',
  'stale_page',
  'drip',
  'oversized_page',
  'endless_big_pages',
  'echo',
];

function positiveInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

/** Throws a TypeError naming the field when a fault is not well formed (scenario files, tests). */
export function validateFault(fault: Fault): void {
  const where = `fault ${JSON.stringify(fault.kind)}`;
  if (!FAULT_KINDS.includes(fault.kind)) {
    throw new TypeError(`Unknown fault kind ${JSON.stringify(fault.kind)}; expected one of ${FAULT_KINDS.join(', ')}`);
  }
  if (fault.times !== undefined && !positiveInteger(fault.times)) {
    throw new TypeError(`${where}: \`times\` must be an integer >= 1`);
  }
  if ('page' in fault && fault.page !== undefined && !positiveInteger(fault.page)) {
    throw new TypeError(`${where}: \`page\` must be an integer >= 1`);
  }
  if (fault.kind === 'drop_before_page' && !positiveInteger(fault.page)) {
    throw new TypeError(`${where}: \`page\` is required (integer >= 1)`);
  }
  if ((fault.kind === 'shift_insert' || fault.kind === 'shift_delete') && !positiveInteger(fault.afterPage)) {
    throw new TypeError(`${where}: \`afterPage\` must be an integer >= 1`);
  }
  if (fault.kind === 'delay_page' && !(typeof fault.ms === 'number' && fault.ms >= 0)) {
    throw new TypeError(`${where}: \`ms\` must be a number >= 0`);
  }
  if (fault.kind === 'error_reply' && (typeof fault.code !== 'string' || fault.code === '')) {
    throw new TypeError(`${where}: \`code\` is required`);
  }
  if (fault.kind === 'bad_frame' && !BAD_FRAME_KINDS.includes(fault.frame)) {
    throw new TypeError(`${where}: \`frame\` must be one of ${BAD_FRAME_KINDS.join(', ')}`);
  }
  if (fault.kind === 'reject_auth' && fault.mode !== undefined && !AUTH_FAILURE_MODES.includes(fault.mode)) {
    throw new TypeError(`${where}: \`mode\` must be one of ${AUTH_FAILURE_MODES.join(', ')}`);
  }
  if (fault.kind === 'malformed_row' && !('row' in fault)) throw new TypeError(`${where}: \`row\` is required`);
  if (fault.kind === 'unknown_push' && !PUSH_KINDS.includes(fault.push)) {
    throw new TypeError(`${where}: \`push\` must be one of ${PUSH_KINDS.join(', ')}`);
  }
  if (
    (fault.kind === 'unknown_push' || fault.kind === 'unsolicited_error') &&
    fault.when !== undefined &&
    !PUSH_MOMENTS.includes(fault.when)
  ) {
    throw new TypeError(`${where}: \`when\` must be one of ${PUSH_MOMENTS.join(', ')}`);
  }
  if (fault.kind === 'drip' && !(typeof fault.ms === 'number' && fault.ms >= 0)) {
    throw new TypeError(`${where}: \`ms\` must be a number >= 0`);
  }
  if (
    (fault.kind === 'drip' || fault.kind === 'endless_big_pages') &&
    fault.rows !== undefined &&
    !positiveInteger(fault.rows)
  ) {
    throw new TypeError(`${where}: \`rows\` must be an integer >= 1`);
  }
  if (fault.kind === 'oversized_page' && !positiveInteger(fault.rows)) {
    throw new TypeError(`${where}: \`rows\` is required (integer >= 1)`);
  }
  if (
    fault.kind === 'endless_big_pages' &&
    fault.padding !== undefined &&
    !(Number.isInteger(fault.padding) && fault.padding >= 0)
  ) {
    throw new TypeError(`${where}: \`padding\` must be an integer >= 0`);
  }
  if (fault.kind === 'echo' && fault.encoding !== undefined && !ECHO_ENCODINGS.includes(fault.encoding)) {
    throw new TypeError(`${where}: \`encoding\` must be one of ${ECHO_ENCODINGS.join(', ')}`);
  }
  if (fault.kind === 'echo' && fault.at !== undefined && fault.at !== 'auth' && fault.at !== 'page') {
    throw new TypeError(`${where}: \`at\` must be auth or page`);
  }
}

interface Pending {
  fault: Fault;
  remaining: number;
}

/** The pending faults, in injection order. */
export class FaultQueue {
  private pending: Pending[] = [];
  private readonly fired: Fault[] = [];

  /** Validates and queues a copy of the fault. */
  inject(fault: Fault): void {
    validateFault(fault);
    this.pending.push({
      fault: structuredClone(fault),
      remaining: fault.persistent === true ? Infinity : (fault.times ?? 1),
    });
  }

  clear(): void {
    this.pending = [];
  }

  /** Faults still waiting to fire. */
  list(): Fault[] {
    return this.pending.map((p) => structuredClone(p.fault));
  }

  /** Every fault that fired so far, in firing order. */
  history(): Fault[] {
    return this.fired.map((f) => structuredClone(f));
  }

  /**
   * For each kind in `kinds`, fires the earliest pending fault of that kind accepted by `matches`,
   * and returns the fired faults in queue order. Used-up faults leave the queue.
   */
  take<K extends FaultKind>(
    kinds: readonly K[],
    matches: (fault: FaultOf<K>) => boolean = () => true,
  ): Array<FaultOf<K>> {
    const taken: Array<FaultOf<K>> = [];
    const seen = new Set<FaultKind>();
    for (const entry of this.pending) {
      const kind = entry.fault.kind as K;
      if (!kinds.includes(kind) || seen.has(kind)) continue;
      const fault = entry.fault as FaultOf<K>;
      if (!matches(fault)) continue;
      seen.add(kind);
      entry.remaining--;
      taken.push(fault);
      this.fired.push(fault);
    }
    this.pending = this.pending.filter((p) => p.remaining > 0);
    return taken;
  }
}
