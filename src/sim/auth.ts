/**
 * The simulator's decision on an `auth` message (docs/qfex-protocol.md §2, and §8 for what the docs leave open): which key
 * or token, whether the signature, nonce and timestamp hold, and which account the session uses.
 * No I/O; the clock is injected. Never logs or returns a secret.
 */
import { NONCE_PATTERN, verifySignature } from './signature.ts';

export interface SimKeyPair {
  publicKey: string;
  secretKey: string;
  /** Accounts this key may use; the first is the one used when `account_id` is omitted. Default ['primary']. */
  accounts?: string[];
}

export interface SimJwt {
  token: string;
  accounts?: string[];
}

export type AuthFailureReason =
  | 'malformed'
  | 'api_key_mismatch'
  | 'unknown_key'
  | 'bad_nonce'
  | 'stale_timestamp'
  | 'bad_signature'
  | 'replayed_nonce'
  | 'bad_jwt'
  | 'unknown_account'
  | 'upgrade_rejected'
  | 'injected';

/** Human-readable text for each reason, used in err frames and logs. */
export const AUTH_FAILURE_TEXT: Record<AuthFailureReason, string> = {
  malformed: 'auth params need an hmac block {public_key, nonce, unix_ts, signature} or a jwt',
  api_key_mismatch: 'hmac.public_key does not match the api_key query parameter',
  unknown_key: 'unknown public key',
  bad_nonce: 'nonce must be 1 to 100 hex characters',
  stale_timestamp: 'unix_ts is outside the allowed clock skew',
  bad_signature: 'signature does not match',
  replayed_nonce: 'nonce already used within the replay window',
  bad_jwt: 'invalid or expired jwt',
  unknown_account: 'account_id is not an account of this key',
  upgrade_rejected: 'credentials refused at the HTTP upgrade',
  injected: 'authentication refused',
};

export type AuthDecision =
  { ok: true; account: string; principal: string } | { ok: false; reason: AuthFailureReason; principal: string | null };

export interface AuthenticatorOptions {
  keys: readonly SimKeyPair[];
  jwts: readonly SimJwt[];
  /** Allowed |now − unix_ts| in seconds (default 30). */
  clockSkewSec: number;
  /** A nonce may not be reused by the same key within this window (default 15 minutes). */
  nonceWindowMs: number;
  /** Strict: `api_key` must match `hmac.public_key`, and signatures must be lowercase hex. */
  strict: boolean;
  now: () => number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class Authenticator {
  private readonly options: AuthenticatorOptions;
  private readonly keys: Map<string, SimKeyPair>;
  private readonly jwts: Map<string, SimJwt>;
  /** public key → (lowercased nonce → expiry ms). */
  private readonly nonces = new Map<string, Map<string, number>>();

  constructor(options: AuthenticatorOptions) {
    this.options = options;
    this.keys = new Map(options.keys.map((k) => [k.publicKey, k]));
    this.jwts = new Map(options.jwts.map((j) => [j.token, j]));
  }

  knowsPublicKey(publicKey: string): boolean {
    return this.keys.has(publicKey);
  }

  knowsJwt(token: string): boolean {
    return this.jwts.has(token);
  }

  /**
   * Decides an auth message's `params`. `apiKeyQuery` is the `?api_key=` of the upgrade URL, or null.
   * A valid signature consumes its nonce even if the account is then refused.
   */
  verify(params: Record<string, unknown>, apiKeyQuery: string | null): AuthDecision {
    const accountId = params['account_id'];
    if (accountId !== undefined && accountId !== null && typeof accountId !== 'string') {
      return { ok: false, reason: 'malformed', principal: null };
    }
    if (params['jwt'] !== undefined) {
      const token = params['jwt'];
      const jwt = typeof token === 'string' ? this.jwts.get(token) : undefined;
      if (jwt === undefined) return { ok: false, reason: 'bad_jwt', principal: 'jwt' };
      return this.pickAccount(jwt.accounts, accountId ?? null, 'jwt');
    }
    const hmac = params['hmac'];
    if (!isRecord(hmac)) return { ok: false, reason: 'malformed', principal: null };
    const { public_key: publicKey, nonce, unix_ts: unixTs, signature } = hmac;
    if (
      typeof publicKey !== 'string' ||
      typeof nonce !== 'string' ||
      typeof unixTs !== 'number' ||
      !Number.isInteger(unixTs)
    ) {
      return { ok: false, reason: 'malformed', principal: typeof publicKey === 'string' ? publicKey : null };
    }
    if (this.options.strict && apiKeyQuery !== null && apiKeyQuery !== publicKey) {
      return { ok: false, reason: 'api_key_mismatch', principal: publicKey };
    }
    const key = this.keys.get(publicKey);
    if (key === undefined) return { ok: false, reason: 'unknown_key', principal: publicKey };
    if (!NONCE_PATTERN.test(nonce)) return { ok: false, reason: 'bad_nonce', principal: publicKey };
    const nowMs = this.options.now();
    if (Math.abs(nowMs / 1000 - unixTs) > this.options.clockSkewSec) {
      return { ok: false, reason: 'stale_timestamp', principal: publicKey };
    }
    if (!verifySignature(key.secretKey, nonce, unixTs, signature, { lowercaseOnly: this.options.strict })) {
      return { ok: false, reason: 'bad_signature', principal: publicKey };
    }
    if (!this.consumeNonce(publicKey, nonce.toLowerCase(), nowMs)) {
      return { ok: false, reason: 'replayed_nonce', principal: publicKey };
    }
    return this.pickAccount(key.accounts, accountId ?? null, publicKey);
  }

  /** False when the nonce was already used by this key within the window; records it otherwise. */
  private consumeNonce(publicKey: string, nonce: string, nowMs: number): boolean {
    let used = this.nonces.get(publicKey);
    if (used === undefined) {
      used = new Map();
      this.nonces.set(publicKey, used);
    }
    for (const [seen, expiry] of used) if (expiry <= nowMs) used.delete(seen);
    if (used.has(nonce)) return false;
    used.set(nonce, nowMs + this.options.nonceWindowMs);
    return true;
  }

  private pickAccount(
    accounts: readonly string[] | undefined,
    requested: string | null,
    principal: string,
  ): AuthDecision {
    const allowed = accounts !== undefined && accounts.length > 0 ? accounts : ['primary'];
    if (requested === null) {
      return { ok: true, account: allowed.includes('primary') ? 'primary' : allowed[0]!, principal };
    }
    if (!allowed.includes(requested)) return { ok: false, reason: 'unknown_account', principal };
    return { ok: true, account: requested, principal };
  }
}
