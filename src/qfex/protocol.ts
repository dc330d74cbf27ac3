/**
 * Reading QFEX Trade WebSocket frames and tier rows. Pure: no I/O, no clock. Every failure is a
 * TierwatchError (QFEX_PROTOCOL for a frame, ROW_INVALID for a row), never anything else, so the
 * caller can record it as the run's error.
 *
 * Frame shapes accepted (the documentation pages named below are the sources):
 * - auth success: `{"authenticated":true}` (spec, CLI) or legacy `{"type":"auth","result":"success"}`
 *   https://docs.qfex.com/websocket/channels/trade/authenticate
 * - auth rejection: `{"authenticated":false}` (or a legacy auth frame whose result is not success)
 * - leverage page: `{"available_leverage_levels_response":[...]}`
 *   https://docs.qfex.com/websocket/channels/trade/get_available_leverage
 * - errors: nested `{"err":{error_code,message,incoming_message}}` and the older flat
 *   `{"type":"error",error_code,...}` https://docs.qfex.com/websocket/errors
 * - anything else that is a JSON object (pushes we do not use, notices, heartbeats sent as messages,
 *   message types added after this was written): `other`, which the session ignores and counts.
 *   With no request id on the wire, a frame that is not one of the answers above cannot be an
 *   answer to anything we asked, so skipping it is safe.
 */
import { TierwatchError } from '../errors.ts';
import { normalizeLeverage, type Tier } from '../history/tier.ts';

export type Frame =
  | { kind: 'auth_ok' }
  | { kind: 'auth_rejected'; reason: string }
  | { kind: 'leverage_page'; rows: unknown[] }
  | {
      kind: 'error';
      errorCode: string;
      message: string | null;
      incomingType: string | null;
      retryAfterMs: number | null;
    }
  | { kind: 'other'; key: string };

export const LEVERAGE_RESPONSE_KEY = 'available_leverage_levels_response';

/**
 * Names a skipped frame is counted under (a metric label): the documented message kinds and a few
 * plausible ones, so that the label set stays bounded whatever a server sends; anything else is
 * `unknown`. `err` covers error frames that answer nothing we asked.
 */
export const FRAME_TYPE_LABELS = [
  'authenticated',
  'auth',
  LEVERAGE_RESPONSE_KEY,
  'user_leverage_response',
  'err',
  'ack',
  'ack_response',
  'subscribed',
  'unsubscribed',
  'order_response',
  'position_response',
  'balance_response',
  'notice',
  'heartbeat',
  'ping',
  'pong',
  'unknown',
] as const;
export type FrameTypeLabel = (typeof FRAME_TYPE_LABELS)[number];

const KNOWN_LABELS: ReadonlySet<string> = new Set(FRAME_TYPE_LABELS);

/** The bounded label of a frame key or type name (never the raw string from the exchange). */
export function frameTypeLabel(key: string): FrameTypeLabel {
  return KNOWN_LABELS.has(key) ? (key as FrameTypeLabel) : 'unknown';
}

/**
 * Deepest nesting of arrays and objects accepted in one frame. A leverage page is three levels
 * deep; the bound keeps every later walk of the value (validation, error previews, logging) far
 * from the stack limit, which a 200,000-deep value would otherwise overflow.
 */
export const MAX_FRAME_DEPTH = 64;

/** Keys that carry no meaning of their own on any frame (REST-style JSON schema pointer). */
const IGNORED_KEYS = new Set(['$schema']);

function protocolError(message: string, cause?: unknown): TierwatchError {
  return new TierwatchError('QFEX_PROTOCOL', message, cause === undefined ? {} : { cause });
}

/** A short, single-line rendering of an untrusted value for an error message. */
function preview(value: unknown, max = 80): string {
  let text: string;
  try {
    // JSON.stringify gives undefined only for a function or a symbol, which String() can show.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- no plain object reaches String() here
    text = value === undefined ? 'undefined' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Classifies one WebSocket message. Throws TierwatchError QFEX_PROTOCOL for a binary frame, text
 * that is not JSON or nests deeper than MAX_FRAME_DEPTH, JSON that is not an object, or a known
 * answer with the wrong shape. An object we do not know is `other`, not an error.
 */
export function parseFrame(data: Buffer | string, isBinary: boolean): Frame {
  if (isBinary) throw protocolError('the exchange sent a binary frame; only JSON text frames are expected');
  const text = typeof data === 'string' ? data : data.toString('utf8');
  const depth = nestingDepth(text, MAX_FRAME_DEPTH);
  if (depth > MAX_FRAME_DEPTH) {
    throw protocolError(`the exchange sent a frame nested deeper than ${MAX_FRAME_DEPTH} levels: ${preview(text)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw protocolError(`the exchange sent a frame that is not JSON: ${preview(text)}`, error);
  }
  if (!isPlainObject(value)) {
    throw protocolError(`the exchange sent a frame that is not a JSON object: ${preview(value)}`);
  }

  if (LEVERAGE_RESPONSE_KEY in value) {
    const rows = value[LEVERAGE_RESPONSE_KEY];
    if (!Array.isArray(rows)) {
      throw protocolError(`${LEVERAGE_RESPONSE_KEY} is not an array: ${preview(rows)}`);
    }
    return { kind: 'leverage_page', rows };
  }

  if ('authenticated' in value) {
    const authenticated = value.authenticated;
    if (authenticated === true) return { kind: 'auth_ok' };
    if (authenticated === false) {
      return { kind: 'auth_rejected', reason: 'the exchange answered {"authenticated":false}' };
    }
    throw protocolError(`"authenticated" is not a boolean: ${preview(authenticated)}`);
  }

  if ('err' in value) {
    if (!isPlainObject(value.err)) throw protocolError(`"err" is not an object: ${preview(value.err)}`);
    return errorFrame(value.err);
  }

  const type = value.type;
  if (type === 'error' || type === 'Err') return errorFrame(value);
  if (type === 'auth') {
    if (value.result === 'success') return { kind: 'auth_ok' };
    return {
      kind: 'auth_rejected',
      reason: `the exchange answered an auth frame with result ${preview(value.result)}`,
    };
  }
  // A subscription push envelope: {"type": ..., "connection_id": ..., "message_id": ...}.
  if (typeof type === 'string' && typeof value.connection_id === 'string' && typeof value.message_id === 'number') {
    return { kind: 'other', key: type };
  }

  // A message type of its own ({"type":"heartbeat"}, {"type":"notice",...}) or a one-key push
  // ({"notice":...}, {"order_response":...}, a key added next month): not an answer to us.
  if (typeof type === 'string') return { kind: 'other', key: type };
  const keys = Object.keys(value).filter((key) => !IGNORED_KEYS.has(key));
  return { kind: 'other', key: keys.length === 1 ? keys[0]! : 'unknown' };
}

/**
 * How deeply arrays and objects nest in JSON text, counted without recursion and without parsing;
 * stops counting once `limit` is passed. Brackets inside strings do not count.
 */
export function nestingDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) {
        i++;
      } // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

function errorFrame(body: Record<string, unknown>): Frame {
  const errorCode = body.error_code;
  if (typeof errorCode !== 'string' || errorCode === '') {
    throw protocolError(`an error frame has no error_code string: ${preview(body)}`);
  }
  // The message "may be null"; tolerate a missing or odd one rather than lose the error code.
  const message = typeof body.message === 'string' ? body.message : null;
  const incoming = body.incoming_message;
  let incomingType: string | null = null;
  if (isPlainObject(incoming) && typeof incoming.type === 'string') incomingType = incoming.type;
  // The hint's place is undocumented ("The error includes a retry-after hint"): look in the message
  // and in a few plausible fields.
  let retryAfterMs = parseRetryAfter(message);
  if (retryAfterMs === null) {
    for (const [field, unitMs] of [
      ['retry_after_ms', 1],
      ['retry_after', 1000],
    ] as const) {
      const hint = body[field];
      if (typeof hint === 'number' && Number.isFinite(hint) && hint >= 0) {
        retryAfterMs = Math.ceil(hint * unitMs);
        break;
      }
    }
  }
  return { kind: 'error', errorCode, message, incomingType, retryAfterMs };
}

const RETRY_AFTER_PATTERN =
  /(?:retry[\s_-]*after|try\s+again\s+in)\s*[:=]?\s*(\d+(?:\.\d+)?)\s*(ms|msecs?|milliseconds?|s|secs?|seconds?)?\b/i;

/**
 * The retry-after hint of a RateLimited message in milliseconds ("retry after 250ms" → 250,
 * "Retry after 2s" → 2000, "retry_after=1.5" → 1500: a bare number is seconds, as in HTTP's
 * Retry-After), or null when there is none.
 */
export function parseRetryAfter(message: string | null): number | null {
  if (message === null) return null;
  const match = RETRY_AFTER_PATTERN.exec(message);
  if (!match) return null;
  const amount = Number(match[1]);
  if (!Number.isFinite(amount)) return null;
  const unit = (match[2] ?? 's').toLowerCase();
  const ms = unit.startsWith('m') ? amount : amount * 1000;
  return Math.ceil(ms);
}

function rowError(
  where: { offset: number },
  symbol: unknown,
  leverage: unknown,
  field: string,
  rule: string,
  got: unknown,
): TierwatchError {
  const names: string[] = [];
  if (typeof symbol === 'string' && symbol !== '') names.push(`symbol ${JSON.stringify(symbol)}`);
  if (leverage !== undefined) names.push(`leverage ${preview(leverage, 30)}`);
  const which = names.length > 0 ? ` (${names.join(', ')})` : '';
  return new TierwatchError(
    'ROW_INVALID',
    `tier row at offset ${where.offset}${which}: ${field} ${rule}, got ${preview(got, 60)}`,
    {
      details: {
        offset: where.offset,
        symbol: typeof symbol === 'string' ? symbol : null,
        leverage: leverage === undefined ? null : preview(leverage, 30),
        field,
        rule,
      },
    },
  );
}

/** What normalizeLeverage would return unchanged: positive, no leading or trailing zeros. */
const CANONICAL_LEVERAGE = /^(?:[1-9]\d*(?:\.\d*[1-9])?|0\.\d*[1-9])$/;

/** A margin is a JSON number in (0, 1]; the strings "NaN" and "Infinity" are not numbers. */
function isMargin(value: unknown): value is number {
  return typeof value === 'number' && value > 0 && value <= 1;
}

/**
 * Checks one raw row from a leverage page and returns it as a Tier. Throws TierwatchError
 * ROW_INVALID naming the row (its offset, and symbol and leverage when known) and the broken rule:
 * symbol a non-empty string; leverage a positive decimal string (or JSON number), normalised;
 * initial_margin and maintenance_margin JSON numbers in (0, 1] with maintenance ≤ initial;
 * max_notional (or legacy max_position when max_notional is absent) a finite number > 0; id a
 * string or absent. Unknown fields are ignored.
 */
export function validateTierRow(row: unknown, where: { offset: number }): Tier {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw rowError(where, undefined, undefined, 'row', 'must be a JSON object', row);
  }
  const raw = row as Record<string, unknown>;
  const symbol = raw.symbol;
  const rawLeverage = raw.leverage;
  if (typeof symbol !== 'string' || symbol.trim() === '') {
    throw rowError(where, undefined, rawLeverage, 'symbol', 'must be a non-empty string', symbol);
  }
  // Fast path: the exchange sends canonical strings ("20"), which need no rewriting.
  const leverage =
    typeof rawLeverage === 'string' && CANONICAL_LEVERAGE.test(rawLeverage)
      ? rawLeverage
      : normalizeLeverage(rawLeverage);
  if (leverage === null) {
    throw rowError(where, symbol, rawLeverage, 'leverage', 'must be a positive decimal', rawLeverage);
  }
  const initial = raw.initial_margin;
  if (!isMargin(initial)) {
    throw rowError(where, symbol, rawLeverage, 'initial_margin', 'must be a finite number in (0, 1]', initial);
  }
  const maintenance = raw.maintenance_margin;
  if (!isMargin(maintenance)) {
    throw rowError(where, symbol, rawLeverage, 'maintenance_margin', 'must be a finite number in (0, 1]', maintenance);
  }
  if (maintenance > initial) {
    throw rowError(
      where,
      symbol,
      rawLeverage,
      'maintenance_margin',
      `must not exceed initial_margin ${initial}`,
      maintenance,
    );
  }
  const notionalField = raw.max_notional !== undefined ? 'max_notional' : 'max_position';
  const maxNotional = raw[notionalField];
  if (typeof maxNotional !== 'number' || !(maxNotional > 0) || maxNotional === Infinity) {
    throw rowError(where, symbol, rawLeverage, notionalField, 'must be a finite number > 0', maxNotional);
  }
  const id = raw.id;
  if (id !== undefined && id !== null && typeof id !== 'string') {
    throw rowError(where, symbol, rawLeverage, 'id', 'must be a string when present', id);
  }
  return {
    symbol,
    leverage,
    exchange_id: id ?? null,
    initial_margin: initial,
    maintenance_margin: maintenance,
    max_notional: maxNotional,
  };
}
