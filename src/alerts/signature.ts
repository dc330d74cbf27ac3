/**
 * Webhook body signing, so a receiver can tell a notification came from this tierwatch.
 *
 * Recipe (documented in docs/alerts.md): with the shared TIERWATCH_WEBHOOK_SECRET,
 *   X-Tierwatch-Timestamp: <Unix seconds when sent>
 *   X-Tierwatch-Signature: sha256=<lowercase hex of HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 * The timestamp is inside the signed text so a captured request cannot be replayed later with a
 * fresh timestamp; receivers should refuse timestamps far from their clock (e.g. 5 minutes).
 * Pure: the secret and the time are passed in.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Tierwatch-Signature';
export const TIMESTAMP_HEADER = 'X-Tierwatch-Timestamp';

/** The signature header value for `body` sent at `timestamp` (Unix seconds, as text). */
export function signBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

/**
 * The receiver's side of the recipe: true when `signature` is right for `timestamp` and `body` and the
 * timestamp is within `toleranceSeconds` of `nowSeconds`. Compares in constant time.
 */
export function verifySignature(
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
  options: { nowSeconds?: number; toleranceSeconds?: number } = {},
): boolean {
  if (!/^\d{1,12}$/.test(timestamp)) return false;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signBody(secret, timestamp, body), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  return expected.length === given.length && timingSafeEqual(expected, given);
}
