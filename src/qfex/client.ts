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
 * Tolerance: answers carry no request id, so which frame answers what is decided apart, purely
 * (answers.ts). Every frame that answers nothing (pushes, notices, heartbeats sent as messages,
 * types added later, errors about other requests or about nothing) is skipped, counted through
 * `onIgnoredFrame` and logged once per type per connection. A leverage page that arrives when none
 * was asked for is a stale answer: the session then reports `desynchronised`, and the caller
 * continues on a fresh connection.
 *
 * What is settled before the socket exists (options, URL, trusted roots, JWT expiry) is dial.ts.
 *
 * Protocol: https://docs.qfex.com/websocket/channels/trade/authenticate,
 * https://docs.qfex.com/websocket/channels/trade/get_available_leverage, https://docs.qfex.com/websocket/errors
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { coerceError, TierwatchError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import { authAnswer, pageAnswer } from './answers.ts';
import { buildAuthMessage, newNonce } from './auth.ts';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  defaultCertificates,
  dialUrl,
  logJwtExpiry,
  type QfexClientOptions,
} from './dial.ts';
import { classifySocketError, describeClose } from './socket-errors.ts';
import { parseFrame, type Frame, type FrameTypeLabel } from './protocol.ts';
import { Redactor, redactingLogger } from './redact.ts';

export type { FrameTap, QfexClientOptions } from './dial.ts';

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

function abortError(signal: AbortSignal): TierwatchError {
  return new TierwatchError('ABORTED', 'the QFEX connection was stopped by a shutdown signal', {
    cause: signal.reason,
  });
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
    let pending: {
      resolve: (rows: unknown[]) => void;
      reject: (error: TierwatchError) => void;
      timer: NodeJS.Timeout;
    } | null = null;
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
      log.warn(
        { frame_type: type, ...fields },
        `ignored a frame from the exchange: ${why} (logged once per type per connection)`,
      );
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
          new TierwatchError(
            'QFEX_CLOSED',
            `the QFEX connection went silent: no frame (pings included) for ${timeouts.idleMs} ms`,
            {
              retryable: true,
            },
          ),
        );
      }, timeouts.idleMs);
      idleTimer.unref();
    };

    phaseTimer = setTimeout(() => {
      fail(
        new TierwatchError('QFEX_TIMEOUT', `no WebSocket handshake with ${endpoint} within ${timeouts.connectMs} ms`, {
          retryable: true,
        }),
      );
    }, timeouts.connectMs);

    socket.on('unexpected-response', (_request, response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      response.resume();
      if (status === 401 || status === 403) {
        fail(
          new TierwatchError(
            'QFEX_AUTH_REJECTED',
            `the exchange refused the API key at the WebSocket upgrade (HTTP ${status})`,
            { details: { httpStatus: status } },
          ),
        );
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
      const where =
        phase === 'connecting'
          ? `connecting to ${endpoint}`
          : phase === 'authenticating'
            ? 'during authentication'
            : 'on an open connection';
      fail(classifySocketError(error, where));
    });

    socket.on('close', (code, reason) => {
      const described = describeClose(code, reason);
      if (phase === 'authenticating') {
        fail(
          new TierwatchError(
            'QFEX_AUTH_REJECTED',
            `the exchange closed the connection during authentication (${described})`,
            { details: { closeCode: code } },
          ),
        );
      } else if (phase === 'connecting') {
        fail(
          new TierwatchError('QFEX_CONNECT', `the connection closed before the WebSocket handshake (${described})`, {
            retryable: true,
          }),
        );
      } else {
        fail(
          new TierwatchError('QFEX_CLOSED', `the exchange closed the connection (${described})`, {
            retryable: true,
            details: { closeCode: code },
          }),
        );
      }
    });

    socket.on('ping', touch);
    socket.on('pong', touch);

    socket.on('open', () => {
      if (phase !== 'connecting') return;
      phase = 'authenticating';
      clearTimeout(phaseTimer);
      phaseTimer = setTimeout(() => {
        fail(
          new TierwatchError('QFEX_TIMEOUT', `no answer to the auth message within ${timeouts.authMs} ms`, {
            retryable: true,
          }),
        );
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
        else if (error instanceof RangeError) {
          fail(
            new TierwatchError('QFEX_PROTOCOL', `the exchange sent a frame that could not be read: ${error.message}`, {
              cause: error,
            }),
          );
        } else {
          fail(
            new TierwatchError('INTERNAL', `reading a frame failed: ${String(error)} (this is a bug)`, {
              cause: error,
            }),
          );
        }
        return;
      }
      if (phase === 'authenticating') onAuthFrame(frame);
      else if (phase === 'ready') onReadyFrame(frame);
    });

    const onAuthFrame = (frame: Frame) => {
      const answer = authAnswer(frame);
      if (answer.kind === 'ignore') {
        ignore(answer.type, answer.why, answer.fields);
      } else if (answer.kind === 'fail') {
        fail(answer.error);
      } else {
        phase = 'ready';
        clearTimeout(phaseTimer);
        touch();
        // Our own pings make a silent server visible even if it never pings us; any pong (or
        // server ping, or message) resets the idle timer.
        pingTimer = setInterval(
          () => {
            if (socket.readyState === WebSocket.OPEN) socket.ping();
          },
          Math.max(1, Math.floor(timeouts.idleMs / 3)),
        );
        pingTimer.unref();
        log.info({ method: options.credentials.kind }, 'authenticated with QFEX');
        resolveOpen(session);
      }
    };

    const onReadyFrame = (frame: Frame) => {
      const answer = pageAnswer(frame, pending !== null);
      if (answer.kind === 'ignore') {
        if (answer.desynchronised === true) desynchronised = true;
        ignore(answer.type, answer.why, answer.fields);
        return;
      }
      const { resolve, reject, timer } = pending!;
      clearTimeout(timer);
      pending = null;
      if (answer.kind === 'page') resolve(answer.rows);
      else reject(redactor.scrubError(answer.error));
    };

    const session: QfexSession = {
      get desynchronised() {
        return desynchronised;
      },
      requestLeveragePage(limit: number, offset: number): Promise<unknown[]> {
        if (failure) return Promise.reject(failure);
        if (phase === 'closed') return Promise.reject(new TierwatchError('QFEX_CLOSED', 'the QFEX session was closed'));
        if (pending) {
          return Promise.reject(new TierwatchError('INTERNAL', 'a leverage page request is already in flight'));
        }
        return new Promise<unknown[]>((resolve, reject) => {
          const timer = setTimeout(() => {
            // A late answer could be taken for the next request's: the session cannot be trusted any more.
            fail(
              new TierwatchError(
                'QFEX_TIMEOUT',
                `no leverage page (offset ${offset}) within ${timeouts.requestMs} ms`,
                { retryable: true },
              ),
            );
          }, timeouts.requestMs);
          pending = { resolve, reject, timer };
          const text = JSON.stringify({ type: 'get_available_leverage_levels', params: { limit, offset } });
          options.onFrame?.('sent', text, now());
          socket.send(text, (error) => {
            // A socket that is already closing will report its close code in the 'close' event,
            // which rejects this request; anything else is a failure of its own.
            if (error && socket.readyState === WebSocket.OPEN) {
              fail(classifySocketError(error, 'sending a page request'));
            }
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
