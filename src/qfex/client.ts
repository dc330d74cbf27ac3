/**
 * One authenticated connection to the QFEX Trade WebSocket, used to read leverage pages. The only
 * module that imports `ws`.
 *
 * Contract: openSession connects, authenticates and resolves with a session, or rejects with a
 * TierwatchError (QFEX_CONNECT, QFEX_TLS, QFEX_TIMEOUT, QFEX_AUTH_REJECTED, QFEX_CLOSED,
 * QFEX_PROTOCOL, ABORTED) after closing the socket. The caller owns the session and must call
 * close() (idempotent) in a `finally`. Once a session has failed (closed, idle, timed out, bad
 * frame) every later request rejects with that failure: the caller opens a fresh session (with a
 * fresh nonce) to retry.
 *
 * Protocol: https://docs.qfex.com/websocket/channels/trade/authenticate,
 * https://docs.qfex.com/websocket/channels/trade/get_available_leverage, https://docs.qfex.com/websocket/errors
 */
import * as tls from 'node:tls';
import type { LookupFunction } from 'node:net';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { TierwatchError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { buildAuthMessage, jwtExpiry, newNonce, type Credentials } from './auth.ts';
import { parseFrame, type Frame } from './protocol.ts';

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
  /** Largest frame accepted; default 16 MiB. A larger frame is QFEX_PROTOCOL. */
  maxPayloadBytes?: number;
  /** Aborting closes the socket and rejects the pending call with ABORTED. */
  signal?: AbortSignal;
  /** Never receives the secret, the JWT or a signature. */
  logger?: Logger;
  /** Millisecond clock, for unix_ts and the JWT expiry warning. */
  now?: () => number;
  randomBytes?: (n: number) => Buffer;
  /** DNS injection for tests (passed to the http/https request). */
  lookup?: LookupFunction;
}

export interface QfexSession {
  /** One request in flight; resolves with the raw rows; exchange error frames become TierwatchErrors. */
  requestLeveragePage(limit: number, offset: number): Promise<unknown[]>;
  /** Idempotent; rejects a pending request with QFEX_CLOSED. */
  close(): void;
}

const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;
const JWT_WARN_MS = 10 * 60 * 1000;

/** Node/OpenSSL error codes that mean the peer's certificate or the TLS layer failed. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function errorCodeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Maps a socket-level failure (an 'error' event) to our codes. */
function classifySocketError(error: unknown, phase: string): TierwatchError {
  const code = errorCodeOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    return new TierwatchError('QFEX_PROTOCOL', `the exchange sent a frame larger than the accepted maximum (${detail})`, { cause: error });
  }
  if (code.startsWith('WS_ERR_')) {
    return new TierwatchError('QFEX_PROTOCOL', `the exchange broke the WebSocket protocol ${phase}: ${detail}`, { cause: error });
  }
  if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.startsWith('CERT_')) {
    return new TierwatchError('QFEX_TLS', `TLS failed ${phase}: ${detail} (${code}); a private CA can be trusted through QFEX_CA_FILE`, {
      cause: error,
      details: { errorCode: code },
    });
  }
  return new TierwatchError('QFEX_CONNECT', `the exchange could not be reached ${phase}: ${detail}${code ? ` (${code})` : ''}`, {
    cause: error,
    retryable: true,
    details: { errorCode: code || null },
  });
}

function describeClose(code: number, reason: Buffer): string {
  const text = reason.toString('utf8');
  return `code ${code}${text ? `, reason ${JSON.stringify(text.slice(0, 200))}` : ''}`;
}

/** An exchange error frame answering a request. */
function exchangeError(frame: Extract<Frame, { kind: 'error' }>): TierwatchError {
  const text = `the exchange answered ${frame.errorCode}${frame.message ? `: ${frame.message}` : ''}`;
  const details = { exchangeCode: frame.errorCode, exchangeMessage: frame.message, retryAfterMs: frame.retryAfterMs };
  if (frame.errorCode === 'RateLimited') return new TierwatchError('QFEX_RATE_LIMITED', text, { retryable: true, details });
  if (frame.errorCode === 'ServerError') return new TierwatchError('QFEX_SERVER_ERROR', text, { retryable: true, details });
  return new TierwatchError('QFEX_ERROR', text, { details });
}

function abortError(signal: AbortSignal): TierwatchError {
  return new TierwatchError('ABORTED', 'the QFEX connection was stopped by a shutdown signal', { cause: signal.reason });
}

/**
 * The roots Node trusts by default, so that giving `ca` adds a private CA instead of replacing them.
 * getCACertificates('default') (Node 22.15+) also covers NODE_EXTRA_CA_CERTS and --use-system-ca.
 */
function defaultCertificates(): readonly string[] {
  const withDefaults = tls as { getCACertificates?: (type?: string) => string[] };
  return typeof withDefaults.getCACertificates === 'function' ? withDefaults.getCACertificates('default') : tls.rootCertificates;
}

/** The URL to dial: the configured one with `api_key` set when a public key is known. */
function dialUrl(options: QfexClientOptions): URL {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (error) {
    throw new TierwatchError('CONFIG_INVALID', `QFEX_WS_URL is not a URL: ${options.url}`, { cause: error });
  }
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') {
    throw new TierwatchError('CONFIG_INVALID', `QFEX_WS_URL must start with wss:// (or ws:// on loopback), got ${url.protocol}//`);
  }
  const publicKey = options.credentials.publicKey;
  if (publicKey !== undefined && publicKey !== '') url.searchParams.set('api_key', publicKey);
  return url;
}

function logJwtExpiry(token: string, nowMs: number, logger: Logger): void {
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

/**
 * Connects to the Trade WebSocket and authenticates (see the module comment for the contract).
 * Every wait is bounded: the connection (TCP, TLS and upgrade) by connectMs, the auth reply by
 * authMs. A fresh nonce is drawn per call.
 */
export function openSession(options: QfexClientOptions): Promise<QfexSession> {
  const logger = options.logger ?? silentLogger();
  const now = options.now ?? Date.now;
  const { timeouts, signal } = options;
  let url: URL;
  try {
    url = dialUrl(options);
  } catch (error) {
    return Promise.reject(error);
  }
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const endpoint = `${url.protocol}//${url.host}${url.pathname}`;
  // The caller's logger already names the account (a sweep binds run_id and account_id): binding it
  // again here would write the key twice.
  const log = logger.child({ endpoint });
  if (options.credentials.kind === 'jwt') logJwtExpiry(options.credentials.token, now(), log);

  return new Promise<QfexSession>((resolveOpen, rejectOpen) => {
    const socket = new WebSocket(url, {
      maxPayload: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD,
      perMessageDeflate: false,
      followRedirects: false,
      // Our own timer bounds the whole handshake; ws's would report it as a generic error.
      ...(options.ca === undefined ? {} : { ca: [...defaultCertificates(), options.ca.toString()] }),
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    });

    type Phase = 'connecting' | 'authenticating' | 'ready' | 'failed' | 'closed';
    let phase: Phase = 'connecting';
    /** Why the session can no longer be used; later requests reject with it. */
    let failure: TierwatchError | null = null;
    let pending: { resolve: (rows: unknown[]) => void; reject: (error: TierwatchError) => void; timer: NodeJS.Timeout } | null = null;
    let phaseTimer: NodeJS.Timeout | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    let pingTimer: NodeJS.Timeout | undefined;

    const stopTimers = () => {
      clearTimeout(phaseTimer);
      clearTimeout(idleTimer);
      clearInterval(pingTimer);
      if (pending) clearTimeout(pending.timer);
    };

    /** Ends the session with `error`: rejects whoever waits, tears the socket down. Idempotent. */
    const fail = (error: TierwatchError) => {
      if (phase === 'failed' || phase === 'closed') return;
      const wasOpening = phase === 'connecting' || phase === 'authenticating';
      phase = 'failed';
      failure = error;
      stopTimers();
      signal?.removeEventListener('abort', onAbort);
      socket.terminate();
      log.debug({ code: error.code, err: error.message }, 'QFEX connection failed');
      if (wasOpening) rejectOpen(error);
      if (pending) {
        const { reject } = pending;
        pending = null;
        reject(error);
      }
    };

    const onAbort = () => fail(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });

    const touch = () => {
      if (phase !== 'ready') return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        fail(
          new TierwatchError('QFEX_CLOSED', `the QFEX connection went silent: no frame (pings included) for ${timeouts.idleMs} ms`, {
            retryable: true,
          }),
        );
      }, timeouts.idleMs);
      idleTimer.unref();
    };

    phaseTimer = setTimeout(() => {
      fail(new TierwatchError('QFEX_TIMEOUT', `no WebSocket handshake with ${endpoint} within ${timeouts.connectMs} ms`, { retryable: true }));
    }, timeouts.connectMs);

    socket.on('unexpected-response', (_request, response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      response.resume();
      if (status === 401 || status === 403) {
        fail(new TierwatchError('QFEX_AUTH_REJECTED', `the exchange refused the API key at the WebSocket upgrade (HTTP ${status})`, { details: { httpStatus: status } }));
      } else {
        fail(
          new TierwatchError('QFEX_CONNECT', `the exchange answered the WebSocket upgrade with HTTP ${status}`, {
            retryable: true,
            details: { httpStatus: status },
          }),
        );
      }
    });

    socket.on('error', (error) => {
      const where = phase === 'connecting' ? `connecting to ${endpoint}` : phase === 'authenticating' ? 'during authentication' : 'on an open connection';
      fail(classifySocketError(error, where));
    });

    socket.on('close', (code, reason) => {
      const described = describeClose(code, reason);
      if (phase === 'authenticating') {
        fail(new TierwatchError('QFEX_AUTH_REJECTED', `the exchange closed the connection during authentication (${described})`, { details: { closeCode: code } }));
      } else if (phase === 'connecting') {
        fail(new TierwatchError('QFEX_CONNECT', `the connection closed before the WebSocket handshake (${described})`, { retryable: true }));
      } else {
        fail(new TierwatchError('QFEX_CLOSED', `the exchange closed the connection (${described})`, { retryable: true, details: { closeCode: code } }));
      }
    });

    socket.on('ping', touch);
    socket.on('pong', touch);

    socket.on('open', () => {
      if (phase !== 'connecting') return;
      phase = 'authenticating';
      clearTimeout(phaseTimer);
      phaseTimer = setTimeout(() => {
        fail(new TierwatchError('QFEX_TIMEOUT', `no answer to the auth message within ${timeouts.authMs} ms`, { retryable: true }));
      }, timeouts.authMs);
      const message = buildAuthMessage(options.credentials, {
        nowMs: now(),
        nonce: newNonce(options.randomBytes),
        ...(options.accountId === undefined ? {} : { accountId: options.accountId }),
      });
      log.debug({ method: options.credentials.kind }, 'authenticating');
      socket.send(JSON.stringify(message), (error) => {
        if (error) fail(classifySocketError(error, 'sending the auth message'));
      });
    });

    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      touch();
      let frame: Frame;
      try {
        const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        frame = parseFrame(buffer, isBinary);
      } catch (error) {
        fail(error instanceof TierwatchError ? error : classifySocketError(error, 'reading a frame'));
        return;
      }
      if (phase === 'authenticating') onAuthFrame(frame);
      else if (phase === 'ready') onReadyFrame(frame);
    });

    const onAuthFrame = (frame: Frame) => {
      switch (frame.kind) {
        case 'auth_ok':
          phase = 'ready';
          clearTimeout(phaseTimer);
          touch();
          // Our own pings make a silent server visible even if it never pings us; any pong (or
          // server ping, or message) resets the idle timer.
          pingTimer = setInterval(() => {
            if (socket.readyState === WebSocket.OPEN) socket.ping();
          }, Math.max(1, Math.floor(timeouts.idleMs / 3)));
          pingTimer.unref();
          log.info({ method: options.credentials.kind }, 'authenticated with QFEX');
          resolveOpen(session);
          return;
        case 'auth_rejected':
          fail(new TierwatchError('QFEX_AUTH_REJECTED', `the exchange rejected the credentials: ${frame.reason}`));
          return;
        case 'error':
          fail(
            new TierwatchError(
              'QFEX_AUTH_REJECTED',
              `the exchange rejected the authentication with ${frame.errorCode}${frame.message ? `: ${frame.message}` : ''}`,
              { details: { exchangeCode: frame.errorCode } },
            ),
          );
          return;
        case 'leverage_page':
          fail(new TierwatchError('QFEX_PROTOCOL', 'the exchange sent a leverage page before answering the auth message'));
          return;
        case 'other':
          return;
      }
    };

    const onReadyFrame = (frame: Frame) => {
      switch (frame.kind) {
        case 'leverage_page': {
          if (!pending) {
            fail(new TierwatchError('QFEX_PROTOCOL', 'the exchange sent a leverage page nobody asked for'));
            return;
          }
          const { resolve, timer } = pending;
          clearTimeout(timer);
          pending = null;
          resolve(frame.rows);
          return;
        }
        case 'error': {
          // With one request in flight, an error frame answers it (as the official CLI assumes).
          if (!pending) {
            log.warn({ exchange_code: frame.errorCode, exchange_message: frame.message }, 'unsolicited error frame from the exchange');
            return;
          }
          const { reject, timer } = pending;
          clearTimeout(timer);
          pending = null;
          reject(exchangeError(frame));
          return;
        }
        case 'auth_ok':
        case 'auth_rejected':
        case 'other':
          log.debug({ frame: frame.kind }, 'ignored frame');
          return;
      }
    };

    const session: QfexSession = {
      requestLeveragePage(limit: number, offset: number): Promise<unknown[]> {
        if (failure) return Promise.reject(failure);
        if (phase === 'closed') return Promise.reject(new TierwatchError('QFEX_CLOSED', 'the QFEX session was closed'));
        if (pending) return Promise.reject(new TierwatchError('INTERNAL', 'a leverage page request is already in flight'));
        return new Promise<unknown[]>((resolve, reject) => {
          const timer = setTimeout(() => {
            // A late answer could be taken for the next request's: the session cannot be trusted any more.
            fail(new TierwatchError('QFEX_TIMEOUT', `no leverage page (offset ${offset}) within ${timeouts.requestMs} ms`, { retryable: true }));
          }, timeouts.requestMs);
          pending = { resolve, reject, timer };
          socket.send(JSON.stringify({ type: 'get_available_leverage_levels', params: { limit, offset } }), (error) => {
            // A socket that is already closing will report its close code in the 'close' event,
            // which rejects this request; anything else is a failure of its own.
            if (error && socket.readyState === WebSocket.OPEN) fail(classifySocketError(error, 'sending a page request'));
          });
        });
      },
      close(): void {
        if (phase === 'closed') return;
        const wasFailed = phase === 'failed';
        phase = 'closed';
        stopTimers();
        signal?.removeEventListener('abort', onAbort);
        if (pending) {
          const { reject } = pending;
          pending = null;
          reject(new TierwatchError('QFEX_CLOSED', 'the QFEX session was closed while a page was awaited'));
        }
        if (wasFailed) return;
        if (socket.readyState === WebSocket.OPEN) {
          socket.close(1000, 'done');
          // A peer that never answers the close frame must not keep the process alive for long.
          setTimeout(() => socket.terminate(), 1000).unref();
        } else {
          socket.terminate();
        }
      },
    };
  });
}
