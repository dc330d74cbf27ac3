/**
 * One simulator connection's transport: its state, the unauthenticated deadline, messages handled
 * one at a time, pings, sending frames and error frames, dropping and closing. What a message
 * means is decided elsewhere (handshake.ts for auth, leverage.ts for the requests).
 */
import { WebSocket } from 'ws';
import type { SimContext } from './context.ts';
import { errorFrame } from './frames.ts';
import { rawText } from './raw-data.ts';

export interface Connection {
  id: number;
  ws: WebSocket;
  apiKeyQuery: string | null;
  state: 'awaiting_auth' | 'auth_pending' | 'authenticated';
  account: string | null;
  principal: string | null;
  /** The auth message as received, for the `echo` fault. */
  authText: string | null;
  pages: number;
  listMode: 'normal' | 'infinite' | 'empty';
  sendPings: boolean;
  answerPings: boolean;
  outstandingPings: number;
  closed: boolean;
  timers: Set<NodeJS.Timeout>;
  /** Messages are handled one at a time, in order, even when a fault delays an answer. */
  queue: Promise<void>;
}

export interface ConnectionHooks {
  /** Handles one text frame; a throw answers ServerError and the connection carries on. */
  onText(conn: Connection, text: string): Promise<void>;
  /** Called once the socket has closed (timers already cleared). */
  onClosed(conn: Connection): void;
}

/**
 * Wires a freshly upgraded socket: counts it, arms the authentication deadline (close 1008), queues
 * text frames to `hooks.onText`, refuses binary frames (1003) and answers pings unless a fault says not to.
 */
export function openConnection(
  ctx: SimContext,
  ws: WebSocket,
  id: number,
  apiKeyQuery: string | null,
  authDeadlineMs: number,
  hooks: ConnectionHooks,
): Connection {
  const conn: Connection = {
    id,
    ws,
    apiKeyQuery,
    state: 'awaiting_auth',
    account: null,
    principal: null,
    authText: null,
    pages: 0,
    listMode: 'normal',
    sendPings: true,
    answerPings: true,
    outstandingPings: 0,
    closed: false,
    timers: new Set(),
    queue: Promise.resolve(),
  };
  ctx.stats.connections++;
  ctx.stats.openConnections++;
  ctx.log.debug({ connection: conn.id, api_key: apiKeyQuery }, 'connection opened');

  conn.timers.add(
    setTimeout(() => {
      if (conn.state !== 'authenticated') {
        ctx.log.info({ connection: conn.id }, 'authentication deadline passed; closing');
        ws.close(1008, 'authentication deadline exceeded');
      }
    }, authDeadlineMs),
  );

  ws.on('message', (data, isBinary) => {
    ctx.stats.framesReceived++;
    if (isBinary) {
      ws.close(1003, 'binary frames are not accepted');
      return;
    }
    const text = rawText(data);
    conn.queue = conn.queue
      .then(() => hooks.onText(conn, text))
      .catch((error: unknown) => {
        ctx.log.error({ connection: conn.id, err: error }, 'simulator failed to handle a message');
        sendError(ctx, conn, 'ServerError', 'internal simulator error', null);
      });
  });
  ws.on('ping', (data) => {
    if (conn.answerPings && !conn.closed) ws.pong(data);
  });
  ws.on('pong', () => {
    ctx.stats.pongsReceived++;
    conn.outstandingPings = 0;
  });
  ws.on('error', (error) => ctx.log.debug({ connection: conn.id, err: error }, 'connection error'));
  ws.on('close', (code) => {
    conn.closed = true;
    for (const timer of conn.timers) clearTimeout(timer);
    conn.timers.clear();
    hooks.onClosed(conn);
    ctx.stats.openConnections--;
    ctx.log.debug({ connection: conn.id, code }, 'connection closed');
  });
  return conn;
}

/** Pings every `intervalMs` once authenticated (unless `stop_pings`); two unanswered pings drop the connection. */
export function startPings(ctx: SimContext, conn: Connection, intervalMs: number): void {
  const timer = setInterval(() => {
    if (conn.closed || !conn.sendPings) return;
    if (conn.outstandingPings >= 2) {
      ctx.log.info({ connection: conn.id }, 'two pings unanswered; dropping the connection');
      conn.ws.terminate();
      return;
    }
    conn.outstandingPings++;
    ctx.stats.pingsSent++;
    conn.ws.ping();
  }, intervalMs);
  conn.timers.add(timer);
}

/** Resolves after `ms`, or as soon as the connection closes (callers check `conn.closed`). */
export function sleep(conn: Connection, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      conn.timers.delete(timer);
      resolve();
    }, ms);
    conn.timers.add(timer);
    conn.ws.once('close', () => resolve());
  });
}

/** A fault's drop: destroyed without a close frame, or closed with `closeCode`. */
export function drop(ctx: SimContext, conn: Connection, closeCode: number | undefined, why: string): void {
  ctx.log.info({ connection: conn.id, close_code: closeCode ?? null }, `fault: ${why}`);
  if (closeCode === undefined) conn.ws.terminate();
  else conn.ws.close(closeCode, why.slice(0, 100));
}

/** Sends a frame (a Buffer as binary) if the connection is still open; `after` runs once it is written. */
export function send(conn: Connection, frame: string | Buffer, after?: () => void): void {
  if (conn.closed || conn.ws.readyState !== WebSocket.OPEN) return;
  conn.ws.send(frame, { binary: Buffer.isBuffer(frame) }, (error) => {
    if (error === undefined || error === null) after?.();
  });
}

/** Sends an error frame in the documented (or legacy) shape, counted in `stats.errorsSent`. */
export function sendError(
  ctx: SimContext,
  conn: Connection,
  code: string,
  message: string | null,
  incoming: unknown,
): void {
  ctx.stats.errorsSent[code] = (ctx.stats.errorsSent[code] ?? 0) + 1;
  ctx.log.debug({ connection: conn.id, code, message }, 'error frame');
  send(conn, errorFrame(ctx.legacy, code, message, incoming));
}

/** Closes with 1001 and resolves once closed; a client that never answers the close frame is cut after 200 ms. */
export function closeConnection(conn: Connection): Promise<void> {
  return new Promise<void>((resolve) => {
    if (conn.ws.readyState === WebSocket.CLOSED) return resolve();
    conn.ws.once('close', () => resolve());
    conn.ws.close(1001, 'server shutting down');
    // A client that never answers the close frame must not hold the shutdown.
    setTimeout(() => conn.ws.terminate(), 200).unref();
  });
}
