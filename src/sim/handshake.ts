/**
 * How the simulator lets a client in: the HTTP upgrade (refused with 401 in `http_401` mode or by an
 * injected `reject_auth`), and the `auth` message — verified by auth.ts, answered in the server's
 * failure mode, with the auth-time faults (never answer, echo, reject, stop pings, drop before page 1).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AUTH_FAILURE_TEXT, type Authenticator, type AuthFailureReason } from './auth.ts';
import { drop, send, sendError, startPings, type Connection } from './connection.ts';
import { isRecord, type SimContext } from './context.ts';
import type { AuthFailureMode } from './faults.ts';
import { AUTH_FALSE_FRAME, authSuccessFrame, echoText, rateLimitedMessage } from './frames.ts';

export interface HandshakeOptions {
  authenticator: Authenticator;
  /** How a failed auth is answered when no fault says otherwise. */
  failureMode: AuthFailureMode;
  /** Ping interval once authenticated. */
  pingIntervalMs: number;
}

export class Handshake {
  readonly #ctx: SimContext;
  readonly #authenticator: Authenticator;
  readonly #failureMode: AuthFailureMode;
  readonly #pingIntervalMs: number;

  constructor(ctx: SimContext, options: HandshakeOptions) {
    this.#ctx = ctx;
    this.#authenticator = options.authenticator;
    this.#failureMode = options.failureMode;
    this.#pingIntervalMs = options.pingIntervalMs;
  }

  /**
   * True when the upgrade may go ahead. Otherwise the 401 has been written to `socket` and the
   * failure counted: the caller must not touch the socket again.
   */
  admitUpgrade(req: IncomingMessage, socket: Duplex, url: URL): boolean {
    const apiKeyQuery = url.searchParams.get('api_key');
    const injected = this.#ctx.faults.take(['reject_auth'], (f) => (f.mode ?? this.#failureMode) === 'http_401');
    if (injected.length > 0 || (this.#failureMode === 'http_401' && !this.#upgradeIdentityKnown(req, url))) {
      this.#recordFailure(injected.length > 0 ? 'injected' : 'upgrade_rejected', apiKeyQuery, null);
      const body = 'Unauthorized\n';
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      return false;
    }
    return true;
  }

  /** In http_401 mode the upgrade must name a known key or token (query or the CLI's headers). */
  #upgradeIdentityKnown(req: IncomingMessage, url: URL): boolean {
    const key = url.searchParams.get('api_key') ?? req.headers['x-qfex-public-key'];
    if (typeof key === 'string' && this.#authenticator.knowsPublicKey(key)) return true;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const jwt = url.searchParams.get('jwt') ?? bearer;
    return typeof jwt === 'string' && this.#authenticator.knowsJwt(jwt);
  }

  /** Answers an `auth` message (its text already kept in `conn.authText` for the echo fault). */
  onAuth(conn: Connection, message: Record<string, unknown>): void {
    const ctx = this.#ctx;
    if (conn.state === 'authenticated') {
      sendError(ctx, conn, 'AlreadyAuthenticated', 'this connection is already authenticated', message);
      return;
    }
    if (ctx.faults.take(['never_answer_auth']).length > 0) {
      conn.state = 'auth_pending';
      ctx.log.info({ connection: conn.id }, 'fault: auth left unanswered');
      return;
    }
    const echo = ctx.faults.take(['echo'], (f) => (f.at ?? 'auth') === 'auth')[0];
    if (echo !== undefined) {
      this.#recordFailure('injected', null, conn);
      sendError(
        ctx,
        conn,
        echo.code ?? 'PermissionDenied',
        `authentication failed for ${echoText(conn.authText ?? '', echo.encoding ?? 'raw')}`,
        message,
      );
      conn.ws.close(1008, 'authentication failed');
      return;
    }
    const injected = ctx.faults.take(['reject_auth'], (f) => (f.mode ?? this.#failureMode) !== 'http_401');
    if (injected[0] !== undefined) {
      this.#reject(conn, message, 'injected', null, injected[0].mode ?? this.#failureMode, injected[0].code);
      return;
    }
    const params = message['params'];
    const decision = isRecord(params)
      ? this.#authenticator.verify(params, conn.apiKeyQuery)
      : ({ ok: false, reason: 'malformed', principal: null } as const);
    if (!decision.ok) {
      this.#reject(conn, message, decision.reason, decision.principal, this.#failureMode);
      return;
    }
    conn.state = 'authenticated';
    conn.account = decision.account;
    conn.principal = decision.principal;
    ctx.stats.authOk++;
    ctx.log.info({ connection: conn.id, principal: decision.principal, account_id: decision.account }, 'authenticated');
    for (const frame of ctx.hostility.aroundAuth('before_auth_answer')) send(conn, frame);
    send(conn, authSuccessFrame(ctx.legacy));
    for (const frame of ctx.hostility.aroundAuth('after_auth_answer')) send(conn, frame);
    for (const fault of ctx.faults.take(
      ['stop_pings', 'ignore_client_pings', 'drop_before_page'],
      (f) => f.kind !== 'drop_before_page' || f.page === 1,
    )) {
      if (fault.kind === 'stop_pings') conn.sendPings = false;
      else if (fault.kind === 'ignore_client_pings') conn.answerPings = false;
      else drop(ctx, conn, fault.closeCode, 'dropped before page 1');
    }
    startPings(ctx, conn, this.#pingIntervalMs);
  }

  #recordFailure(reason: AuthFailureReason, principal: string | null, conn: Connection | null): void {
    const stats = this.#ctx.stats;
    stats.authFailed++;
    stats.authFailures[reason] = (stats.authFailures[reason] ?? 0) + 1;
    stats.lastAuthFailure = reason;
    this.#ctx.log.info({ connection: conn?.id ?? null, principal, reason }, 'authentication refused');
  }

  #reject(
    conn: Connection,
    message: unknown,
    reason: AuthFailureReason,
    principal: string | null,
    mode: AuthFailureMode,
    code = 'PermissionDenied',
  ): void {
    this.#recordFailure(reason, principal, conn);
    switch (mode) {
      case 'err_frame':
        // The echo carries the client's own message back, signature included, as a real server would.
        sendError(
          this.#ctx,
          conn,
          code,
          code === 'RateLimited' ? rateLimitedMessage(20) : `authentication failed: ${AUTH_FAILURE_TEXT[reason]}`,
          message,
        );
        break;
      case 'close':
        break;
      default: // authenticated_false, and http_401 for failures only visible after the upgrade
        send(conn, AUTH_FALSE_FRAME);
    }
    conn.ws.close(1008, 'authentication failed');
  }
}
