/**
 * Outgoing frames, in the current documented shapes or, per `LegacyOptions`, the older ones a
 * tolerant client must also accept (docs/qfex-protocol.md §2, §4, §5). Pure string building.
 */
import type { EchoEncoding } from './faults.ts';
import type { SimTier } from './universe.ts';

export interface LegacyOptions {
  /** `{"type":"auth","result":"success"}` instead of `{"authenticated":true}`. */
  authSuccess?: boolean;
  /** Flat `{"type":"error",error_code,message,incoming_message}` instead of `{"err":{...}}`. */
  flatErrors?: boolean;
  /** `max_position` instead of `max_notional`. */
  maxPosition?: boolean;
  /** leverage as a JSON number instead of a string. */
  numericLeverage?: boolean;
}

export type WireRow = Record<string, unknown>;

export function authSuccessFrame(legacy: LegacyOptions): string {
  return legacy.authSuccess === true ? '{"type":"auth","result":"success"}' : '{"authenticated":true}';
}

export const AUTH_FALSE_FRAME = '{"authenticated":false}';

/** An error frame; `incoming` is the request echoed back (an object, or the raw text for non-JSON). */
export function errorFrame(legacy: LegacyOptions, code: string, message: string | null, incoming: unknown): string {
  const body = { error_code: code, message, incoming_message: incoming === undefined ? null : incoming };
  return JSON.stringify(legacy.flatErrors === true ? { type: 'error', ...body } : { err: body });
}

/** A tier as it goes on the wire, fields in the documented order. */
export function wireRow(tier: SimTier, legacy: LegacyOptions): WireRow {
  const leverage = legacy.numericLeverage === true ? Number(tier.leverage) : tier.leverage;
  return legacy.maxPosition === true
    ? {
        id: tier.id,
        symbol: tier.symbol,
        initial_margin: tier.initial_margin,
        maintenance_margin: tier.maintenance_margin,
        max_position: tier.max_notional,
        leverage,
      }
    : {
        id: tier.id,
        symbol: tier.symbol,
        initial_margin: tier.initial_margin,
        maintenance_margin: tier.maintenance_margin,
        max_notional: tier.max_notional,
        leverage,
      };
}

export type ListResponseKey = 'available_leverage_levels_response' | 'user_leverage_response';

export function listFrame(key: ListResponseKey, rows: readonly unknown[]): string {
  return JSON.stringify({ [key]: rows });
}

export function rateLimitedMessage(retryAfterMs: number): string {
  return `You have exceeded the allowed message rate. Retry after ${retryAfterMs}ms.`;
}

/** A client frame quoted back in an error message, as the `echo` fault does. */
export function echoText(text: string, encoding: EchoEncoding): string {
  switch (encoding) {
    case 'raw':
      return text;
    case 'json':
      return JSON.stringify(text);
    default:
      return Buffer.from(text, 'utf8').toString(encoding);
  }
}
