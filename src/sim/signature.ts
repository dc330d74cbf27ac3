/**
 * The simulator's own HMAC check for the Trade WebSocket `auth` message, written from the protocol
 * notes (docs/qfex-protocol.md §2) and deliberately independent of the client's signing code, so that a bug in one
 * cannot hide in the other. Both are pinned to the same test vectors.
 *
 * Documented formula: signature = hex(HMAC-SHA256(key = secret as UTF-8 bytes, msg = `${nonce}:${unix_ts}`)).
 * https://docs.qfex.com/websocket/channels/trade/authenticate
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Hex, 1 to 100 characters (the documented maximum; the minimum is our choice: docs/qfex-protocol.md §8). */
export const NONCE_PATTERN = /^[0-9a-fA-F]{1,100}$/;

const HEX_64 = /^[0-9a-fA-F]{64}$/;

/** The string the exchange signs: nonce, a colon, the decimal Unix timestamp in seconds. */
export function signedPayload(nonce: string, unixTs: number): string {
  return `${nonce}:${unixTs}`;
}

/** Lowercase hex HMAC-SHA256 of `${nonce}:${unixTs}` keyed with the secret's UTF-8 bytes. */
export function computeSignature(secretKey: string, nonce: string, unixTs: number): string {
  return createHmac('sha256', Buffer.from(secretKey, 'utf8'))
    .update(signedPayload(nonce, unixTs), 'utf8')
    .digest('hex');
}

/**
 * True when `signature` is the hex HMAC for this secret, nonce and timestamp. Hex case is ignored
 * unless `lowercaseOnly` (the strict mode: docs/qfex-protocol.md §8). Never throws; compares in constant time.
 */
export function verifySignature(
  secretKey: string,
  nonce: string,
  unixTs: number,
  signature: unknown,
  options: { lowercaseOnly?: boolean } = {},
): boolean {
  if (typeof signature !== 'string' || !HEX_64.test(signature)) return false;
  if (options.lowercaseOnly === true && signature !== signature.toLowerCase()) return false;
  const expected = Buffer.from(computeSignature(secretKey, nonce, unixTs), 'hex');
  const given = Buffer.from(signature, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
