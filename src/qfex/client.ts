/**
 * One authenticated connection to the QFEX Trade WebSocket, used to read leverage pages. The only
 * module that imports `ws`.
 *
 * Contract: openSession connects, authenticates and resolves with a session, or rejects with a
 * TierwatchError (QFEX_CONNECT, QFEX_TLS, QFEX_TIMEOUT, QFEX_AUTH_REJECTED, QFEX_RATE_LIMITED and
 * QFEX_SERVER_ERROR (retryable, like a page), QFEX_CLOSED, QFEX_PROTOCOL, QFEX_FRAME_TOO_LARGE,
 * ABORTED) after closing the socket. The caller owns the session and must call close()
 * (idempotent) in a `finally`. Once a session has failed (closed, idle, timed out, bad frame)
 * every later request rejects with that failure: the caller opens a fresh session (with a fresh
 * nonce) to retry.
 *
 * Tolerance: answers carry no request id, so with one request in flight the answer to it is the
 * next leverage page, or the next error frame that does not name another request. Every other
 * frame (pushes, notices, heartbeats sent as messages, types added later, errors about other
 * requests or about nothing) is skipped, counted through `onIgnoredFrame` and logged once per type
 * per connection. A leverage page that arrives when none was asked for is a stale answer: the
 * session then reports `desynchronised`, and the caller continues on a fresh connection.
 *
 * Protocol: https://docs.qfex.com/websocket/channels/trade/authenticate,
 * https://docs.qfex.com/websocket/channels/trade/get_available_leverage, https://docs.qfex.com/websocket/errors
 */
import * as tls from 'node:tls';
import type { LookupFunction } from 'node:net';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { coerceError, TierwatchError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { buildAuthMessage, jwtExpiry, newNonce, type Credentials } from './auth.ts';
import { classifySocketError, describeClose } from './socket-errors.ts';
import { frameTypeLabel, LEVERAGE_RESPONSE_KEY, parseFrame, type Frame, type FrameTypeLabel } from './protocol.ts';
import { Redactor, redactingLogger } from './redact.ts';

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

export interface QfexSession {
  /** One request in flight; resolves with the raw rows; exchange error frames become TierwatchErrors. */
  requestLeveragePage(limit: number, offset: number): Promise<unknown[]>;
  /** Idempotent; rejects a pending request with QFEX_CLOSED. */
  close(): void;
  /**
   * True once a leverage page arrived that no request was waiting for: the server answered
   * something twice or late, so the next answer on this connection may not be the next request's.
   */
  readonly desynchronised: boolean;
}

export const DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
const JWT_WARN_MS = 10 * 60 * 1000;

/** An exchange error frame answering a request. */
function exchangeError(frame: Extract<Frame, { kind: 'error' }>, what = ''): TierwatchError {
  const text = `the exchange answered ${what}${frame.errorCode}${frame.message ? `: ${frame.message}` : ''}`;
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
    return Promise.reject(coerceError(error));
  }
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const endpoint = `${url.protocol}//${url.host}${url.pathname}`;
  // The caller's logger already names the account (a sweep binds run_id and account_id): binding it
  // again here would write the key twice.
  //
  // Whatever the exchange sends is scrubbed of our credentials before it can become a log field,
  // an error message or a stored row; the redactor learns the auth frame's signature and nonce as it is sent.
  const redactor = Redactor.forCredentials(options.credentials);
  const log = redactingLogger(logger.child({ endpoint }), redactor);
  if (options.credentials.kind === 'jwt') logJwtExpiry(options.credentials.token, now(), log);

  return new Promise<QfexSession>((resolveOpen, rejectOpen) => {
    const socket = new WebSocket(url, {
      maxPayload: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
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
    let desynchronised = false;
    /** Frame types already logged as ignored on this connection (each is logged once). */
    const loggedIgnored = new Set<FrameTypeLabel>();

    /** Skips a frame that answers nothing we asked: counted every time, logged once per type. */
    const ignore = (type: FrameTypeLabel, why: string, fields: Record<string, unknown> = {}) => {
      options.onIgnoredFrame?.(type);
      if (loggedIgnored.has(type)) return;
      loggedIgnored.add(type);
      log.warn({ frameType: type, ...fields }, `ignored a frame from the exchange: ${why} (logged once per type per connection)`);
    };

    const stopTimers = () => {
      clearTimeout(phaseTimer);
      clearTimeout(idleTimer);
      clearInterval(pingTimer);
      if (pending) clearTimeout(pending.timer);
    };

    /** Ends the session with `error`: rejects whoever waits, tears the socket down. Idempotent. */
    const fail = (unscrubbed: TierwatchError) => {
      if (phase === 'failed' || phase === 'closed') return;
      const error = redactor.scrubError(unscrubbed);
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
      const text = JSON.stringify(message);
      redactor.learnSentAuthFrame(text);
      options.onFrame?.('sent', text, now());
      socket.send(text, (error) => {
        if (error) fail(classifySocketError(error, 'sending the auth message'));
      });
    });

    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      touch();
      let frame: Frame;
      try {
        const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        const text = isBinary ? null : buffer.toString('utf8');
        options.onFrame?.('received', text ?? buffer, now());
        frame = parseFrame(text === null ? buffer : redactor.scrubFrame(text), isBinary);
      } catch (error) {
        if (error instanceof TierwatchError) fail(error);
        else if (error instanceof RangeError) fail(new TierwatchError('QFEX_PROTOCOL', `the exchange sent a frame that could not be read: ${error.message}`, { cause: error }));
        else fail(new TierwatchError('INTERNAL', `reading a frame failed: ${String(error)} (this is a bug)`, { cause: error }));
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
          if (frame.incomingType !== null && frame.incomingType !== 'auth') {
            ignore('err', 'an error about another request while the auth answer was awaited', { exchangeCode: frame.errorCode.slice(0, 60) });
            return;
          }
          // "Safe to retry after a short delay": a busy exchange is not a refusal of the key.
          if (frame.errorCode === 'RateLimited' || frame.errorCode === 'ServerError') {
            fail(exchangeError(frame, 'the auth message with '));
            return;
          }
          fail(
            new TierwatchError(
              'QFEX_AUTH_REJECTED',
              `the exchange rejected the authentication with ${frame.errorCode}${frame.message ? `: ${frame.message}` : ''}`,
              { details: { exchangeCode: frame.errorCode } },
            ),
          );
          return;
        case 'leverage_page':
          ignore(LEVERAGE_RESPONSE_KEY, 'a leverage page before the auth answer');
          return;
        case 'other':
          ignore(frameTypeLabel(frame.key), 'a message that answers nothing we asked');
          return;
      }
    };

    const onReadyFrame = (frame: Frame) => {
      switch (frame.kind) {
        case 'leverage_page': {
          if (!pending) {
            // Answered twice, or late: whatever comes next may belong to an older request too.
            desynchronised = true;
            ignore(LEVERAGE_RESPONSE_KEY, 'a leverage page nobody was waiting for (a stale answer); the next request goes to a fresh connection');
            return;
          }
          const { resolve, timer } = pending;
          clearTimeout(timer);
          pending = null;
          resolve(frame.rows);
          return;
        }
        case 'error': {
          // With one request in flight, an error frame answers it (as the official CLI assumes),
          // unless it names another request; with none in flight it answers nothing.
          if (frame.incomingType !== null && frame.incomingType !== 'get_available_leverage_levels') {
            ignore('err', 'an error frame about a request we never sent', { exchangeCode: frame.errorCode.slice(0, 60) });
            return;
          }
          if (!pending) {
            ignore('err', 'an error frame while no request was in flight', { exchange_code: frame.errorCode.slice(0, 60) });
            return;
          }
          const { reject, timer } = pending;
          clearTimeout(timer);
          pending = null;
          reject(redactor.scrubError(exchangeError(frame)));
          return;
        }
        case 'auth_ok':
        case 'auth_rejected':
          ignore('authenticated', 'an auth answer after authentication');
          return;
        case 'other':
          ignore(frameTypeLabel(frame.key), 'a message that answers nothing we asked');
          return;
      }
    };

    const session: QfexSession = {
      get desynchronised() {
        return desynchronised;
      },
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
          const text = JSON.stringify({ type: 'get_available_leverage_levels', params: { limit, offset } });
          options.onFrame?.('sent', text, now());
          socket.send(text, (error) => {
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
