/**
 * What openSession settles before a socket exists: its options, the URL it dials (with the public
 * key), the certificate roots it trusts (Node's defaults plus a private CA, never instead of them),
 * and a warning when the JWT it is given is about to expire.
 */
import * as tls from 'node:tls';
import type { LookupFunction } from 'node:net';
import { TierwatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { jwtExpiry, type Credentials } from './auth.ts';
import type { FrameTypeLabel } from './protocol.ts';

export interface QfexClientOptions {
  /** ws(s)://…; `?api_key=<public key>` is appended for hmac (and for jwt when a public key is known). */
  url: string;
  credentials: Credentials;
  /** undefined = primary account (no account_id sent). */
  accountId?: string;
  /** Extra trusted CA (PEM), added to Node's default roots; certificate checks are never disabled. */
  ca?: string | Buffer;
  /** idleMs: no frame at all (pings and pongs included) for this long means a dead connection. */
  timeouts: { connectMs: number; authMs: number; requestMs: number; idleMs: number };
  /** Largest frame accepted (ws's maxPayload); default 4 MiB. A larger frame is QFEX_FRAME_TOO_LARGE. */
  maxPayloadBytes?: number;
  /** Called for every frame skipped because it answers nothing we asked, with its bounded type label. */
  onIgnoredFrame?: (type: FrameTypeLabel) => void;
  /** Aborting closes the socket and rejects the pending call with ABORTED. */
  signal?: AbortSignal;
  /** Never receives the secret, the JWT or a signature. */
  logger?: Logger;
  /** Millisecond clock, for unix_ts and the JWT expiry warning. */
  now?: () => number;
  randomBytes?: (n: number) => Buffer;
  /** DNS injection for tests (passed to the http/https request). */
  lookup?: LookupFunction;
  /**
   * Sees every text frame as it goes out and as it comes in, raw (the auth frame with its
   * signature or JWT): the transcript recorder, which removes them. Must not throw.
   */
  onFrame?: FrameTap;
}

export type FrameTap = (direction: 'sent' | 'received', data: string | Buffer, atMs: number) => void;

export const DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
const JWT_WARN_MS = 10 * 60 * 1000;

/**
 * The roots Node trusts by default, so that giving `ca` adds a private CA instead of replacing them.
 * getCACertificates('default') (Node 22.15+) also covers NODE_EXTRA_CA_CERTS and --use-system-ca.
 */
export function defaultCertificates(): readonly string[] {
  const withDefaults = tls as { getCACertificates?: (type?: string) => string[] };
  return typeof withDefaults.getCACertificates === 'function'
    ? withDefaults.getCACertificates('default')
    : tls.rootCertificates;
}

/** The URL to dial: the configured one with `api_key` set when a public key is known. */
export function dialUrl(options: QfexClientOptions): URL {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (error) {
    throw new TierwatchError('CONFIG_INVALID', `QFEX_WS_URL is not a URL: ${options.url}`, { cause: error });
  }
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `QFEX_WS_URL must start with wss:// (or ws:// on loopback), got ${url.protocol}//`,
    );
  }
  const publicKey = options.credentials.publicKey;
  if (publicKey !== undefined && publicKey !== '') url.searchParams.set('api_key', publicKey);
  return url;
}

/** Logs when the JWT expires, at warn when it has expired or expires within 10 minutes. */
export function logJwtExpiry(token: string, nowMs: number, logger: Logger): void {
  const expiry = jwtExpiry(token);
  if (expiry === null) {
    logger.info('the JWT expiry is not readable; it will be known only when the exchange rejects it');
    return;
  }
  const remainingMs = expiry.getTime() - nowMs;
  const fields = { jwt_expires_at: expiry.toISOString(), jwt_remaining_minutes: Math.floor(remainingMs / 60_000) };
  if (remainingMs <= 0) logger.warn(fields, 'the JWT has expired: renew QFEX_JWT');
  else if (remainingMs <= JWT_WARN_MS) logger.warn(fields, 'the JWT expires within 10 minutes: renew QFEX_JWT');
  else logger.info(fields, 'JWT expiry');
}
