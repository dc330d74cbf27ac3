/**
 * Building the QFEX Trade WebSocket `auth` message: HMAC-SHA256 signing and the JWT alternative.
 * Pure: the clock and the random source are passed in, so the signature can be pinned to the test
 * vectors in the protocol notes. Nothing here logs; callers must never log what it returns either
 * (the message carries the signature or the JWT).
 *
 * Protocol: https://docs.qfex.com/websocket/channels/trade/authenticate
 */
import { createHmac, randomBytes as cryptoRandomBytes } from 'node:crypto';

export type Credentials =
  { kind: 'hmac'; publicKey: string; secretKey: string } | { kind: 'jwt'; token: string; publicKey?: string };

/**
 * Lowercase hex HMAC-SHA256 of `${nonce}:${unixTs}`, keyed by the secret key's raw UTF-8 bytes
 * (not hex-decoded), exactly as the exchange documents it. `unixTs` is in whole seconds.
 */
export function signHmac(secretKey: string, nonce: string, unixTs: number): string {
  return createHmac('sha256', Buffer.from(secretKey, 'utf8')).update(`${nonce}:${unixTs}`, 'utf8').digest('hex');
}

/**
 * A fresh nonce: 16 random bytes as 32 lowercase hex characters (the exchange wants hex, at most
 * 100 characters, unique within 15 minutes). Uses node:crypto unless a source is injected.
 */
export function newNonce(randomBytes: (n: number) => Buffer = cryptoRandomBytes): string {
  const bytes = randomBytes(16);
  if (bytes.length !== 16) throw new Error(`nonce source returned ${bytes.length} bytes instead of 16`);
  return bytes.toString('hex');
}

/**
 * The JSON-serialisable `auth` request. `account_id` is present only when a subaccount is asked
 * for: the primary account sends none. `unix_ts` is `nowMs` floored to seconds.
 */
export function buildAuthMessage(
  credentials: Credentials,
  options: { accountId?: string; nowMs: number; nonce: string },
): object {
  const accountPart = options.accountId === undefined ? {} : { account_id: options.accountId };
  if (credentials.kind === 'jwt') {
    return { type: 'auth', params: { jwt: credentials.token, ...accountPart } };
  }
  const unixTs = Math.floor(options.nowMs / 1000);
  return {
    type: 'auth',
    params: {
      hmac: {
        public_key: credentials.publicKey,
        nonce: options.nonce,
        unix_ts: unixTs,
        signature: signHmac(credentials.secretKey, options.nonce, unixTs),
      },
      ...accountPart,
    },
  };
}

/**
 * The `exp` claim of a JWT as a Date, when the payload decodes to JSON with a finite numeric `exp`;
 * otherwise null. Never verifies the signature (we only want to warn before the token expires) and
 * never throws.
 */
export function jwtExpiry(token: string): Date | null {
  try {
    const parts = token.split('.');
    if (parts.length < 2 || !parts[1]) return null;
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (typeof payload !== 'object' || payload === null) return null;
    const exp = (payload as { exp?: unknown }).exp;
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return null;
    const date = new Date(exp * 1000);
    return Number.isNaN(date.getTime()) ? null : date;
  } catch {
    return null;
  }
}
