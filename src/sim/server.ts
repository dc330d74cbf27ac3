/**
 * The built-in QFEX Trade WebSocket simulator: a `ws` server speaking the protocol as
 * the QFEX documentation describes it, with plausible defaults for what the docs leave open.
 * Written independently of src/qfex/ on purpose (own HMAC check, own frame parsing).
 *
 * Per connection: upgrade (`?api_key=` optional) → `auth` within `authDeadlineMs` (else close 1008)
 * → pings every `pingIntervalMs` (dropped after 2 unanswered) → `get_available_leverage_levels`,
 * `get_user_leverage`, `set_user_leverage`. Bad input gets the documented error frames; binary
 * frames close with 1003, oversized ones with 1009, shutdown with 1001.
 * Faults (see faults.ts) and tier mutations (book.ts) are driven through the returned `Simulator`.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { silentLogger, type Logger } from '../log.ts';
import { Authenticator, AUTH_FAILURE_TEXT, type AuthFailureReason, type SimJwt, type SimKeyPair } from './auth.ts';
import { TierBook, type SimChange, type TierPatch } from './book.ts';
import { FaultQueue, type AuthFailureMode, type Fault, type FaultOf } from './faults.ts';
import { Hostility } from './hostile.ts';
import {
  AUTH_FALSE_FRAME,
  authSuccessFrame,
  echoText,
  errorFrame,
  listFrame,
  rateLimitedMessage,
  wireRow,
  type LegacyOptions,
} from './frames.ts';
import { cloneTier, defaultUniverse, makeTier, type SimTier } from './universe.ts';

/** Demo credentials: they belong to no real account and may be printed. */
export const DEMO_PUBLIC_KEY = 'qfex_pub_demo_tierwatch';
export const DEMO_SECRET_KEY = 'qfex_secret_demo_tierwatch_not_a_real_key';

export interface SimulatorOptions {
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: a free one; read `sim.port`). */
  port?: number;
  /** PEM key and certificate: serve wss:// through an https server. */
  tls?: { key: string; cert: string };
  /** Default: the demo key pair, accounts ['primary']. */
  keys?: SimKeyPair[];
  /** JWTs accepted as `params.jwt` (default none). */
  jwts?: SimJwt[];
  /** Account id → tiers. Default { primary: defaultUniverse() }. */
  universe?: Record<string, SimTier[]>;
  /** Server-side cap on `limit` (default 1000: docs/qfex-protocol.md §4). */
  maxPageSize?: number;
  /** Close an unauthenticated connection after this long, with 1008 (default 60,000 ms). */
  authDeadlineMs?: number;
  /** Ping interval once authenticated (default 15,000 ms); 2 unanswered pings drop the connection. */
  pingIntervalMs?: number;
  /** Allowed |now − unix_ts| in seconds (default 30). */
  clockSkewSec?: number;
  /** Nonce replay window per public key (default 15 minutes). */
  nonceWindowMs?: number;
  legacy?: LegacyOptions;
  /** How a failed auth is answered (default 'authenticated_false': that frame, then close 1008). */
  authFailureMode?: AuthFailureMode;
  /** Reject `api_key` ≠ `hmac.public_key`, uppercase signatures, and a missing `params` (InvalidJSONFormat). */
  strict?: boolean;
  /** Largest client frame accepted (default 1 MiB); larger closes with 1009. */
  maxPayloadBytes?: number;
  /** Reuse a page's serialised JSON while the account has not changed (benchmarks). Default false. */
  preserializePages?: boolean;
  /** Answer to `set_user_leverage`: `{"ack_response":true}` (default, docs page) or `{"ack":{incoming_message}}` (spec). */
  ackShape?: 'ack_response' | 'ack';
  /** Clock in ms for the timestamp window, nonce expiry and the change log (default Date.now). */
  now?: () => number;
  logger?: Logger;
}

export interface SimPageRequest {
  connection: number;
  account: string;
  type: 'get_available_leverage_levels' | 'get_user_leverage';
  /** 1-based page number on its connection (leverage-level requests only; 0 for get_user_leverage). */
  page: number;
  /** As requested (after defaults). */
  limit: number;
  /** After the server cap. */
  servedLimit: number;
  offset: number;
  /** Rows sent, or -1 when a fault answered instead of a page. */
  rows: number;
}

export interface SimStats {
  connections: number;
  openConnections: number;
  authOk: number;
  authFailed: number;
  authFailures: Partial<Record<AuthFailureReason, number>>;
  lastAuthFailure: AuthFailureReason | null;
  /** Valid leverage list requests (both kinds). */
  pageRequests: number;
  /** The latest 100 valid list requests, oldest first. */
  lastRequests: SimPageRequest[];
  errorsSent: Record<string, number>;
  pingsSent: number;
  pongsReceived: number;
  framesReceived: number;
}

export interface Simulator {
  /** `ws://127.0.0.1:PORT`, or `wss://localhost:PORT` with TLS. */
  readonly url: string;
  readonly port: number;
  /** The account tiers' change log (append-only). */
  readonly changeLog: readonly SimChange[];
  /** Live counters. */
  readonly stats: SimStats;
  inject(fault: Fault): void;
  clearFaults(): void;
  /** Faults still pending, and those fired so far. */
  pendingFaults(): Fault[];
  firedFaults(): Fault[];
  /** Deep copy of an account's current tiers (default 'primary'), in exchange order. */
  tiers(account?: string): SimTier[];
  accounts(): string[];
  editTier(account: string, symbol: string, leverage: string | number, patch: TierPatch): SimChange;
  removeTier(account: string, symbol: string, leverage: string | number): SimChange;
  addTier(account: string, tier: SimTier): SimChange;
  listSymbol(account: string, symbol: string, options?: { levels?: Array<number | string>; baseNotional?: number }): SimChange[];
  delistSymbol(account: string, symbol: string): SimChange[];
  setTiers(account: string, tiers: SimTier[]): SimChange[];
  /** A point to come back to with revertTo (the latest change's seq). */
  mark(): number;
  /** Brings every account back to its state at `mark`, logging the net differences. */
  revertTo(mark: number): SimChange[];
  /** Destroys every open connection abruptly (no close frame). */
  dropConnections(): void;
  /** Closes every connection (1001), stops the server; resolves when all are closed. */
  close(): Promise<void>;
}

const MAX_PAGE_DEFAULT = 1000;
const RECENT_REQUESTS = 100;
/** The depth of a `deep` bad frame: far beyond any stack a recursive walk of it could use. */
const DEEP_NESTING = 200_000;
const DEFAULT_OVERSIZED_BYTES = 8 * 1024 * 1024;

interface Connection {
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** Starts the simulator; resolves once it listens. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = new SimulatorServer(options);
  await sim.listen();
  return sim;
}

class SimulatorServer implements Simulator {
  readonly stats: SimStats = {
    connections: 0,
    openConnections: 0,
    authOk: 0,
    authFailed: 0,
    authFailures: {},
    lastAuthFailure: null,
    pageRequests: 0,
    lastRequests: [],
    errorsSent: {},
    pingsSent: 0,
    pongsReceived: 0,
    framesReceived: 0,
  };

  private readonly options: SimulatorOptions;
  private readonly log: Logger;
  private readonly legacy: LegacyOptions;
  private readonly maxPageSize: number;
  private readonly authDeadlineMs: number;
  private readonly pingIntervalMs: number;
  private readonly failureMode: AuthFailureMode;
  private readonly book: TierBook;
  private readonly faults = new FaultQueue();
  /** Unsolicited frames, stale answers, drips, oversized and endless big pages (hostile.ts). */
  private readonly hostility: Hostility;
  private readonly authenticator: Authenticator;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly pageCache = new Map<string, { version: number; json: string }>();
  /** account → symbol → leverage chosen with set_user_leverage. */
  private readonly userLeverage = new Map<string, Map<string, string>>();
  private nextConnectionId = 1;
  private boundPort = 0;
  private closing: Promise<void> | null = null;

  constructor(options: SimulatorOptions) {
    this.options = options;
    this.log = (options.logger ?? silentLogger()).child({ component: 'simulator' });
    this.legacy = options.legacy ?? {};
    this.hostility = new Hostility(this.faults, this.legacy);
    this.maxPageSize = options.maxPageSize ?? MAX_PAGE_DEFAULT;
    this.authDeadlineMs = options.authDeadlineMs ?? 60_000;
    this.pingIntervalMs = options.pingIntervalMs ?? 15_000;
    this.failureMode = options.authFailureMode ?? 'authenticated_false';
    if (!Number.isInteger(this.maxPageSize) || this.maxPageSize < 1) throw new RangeError(`Expected \`maxPageSize\` to be an integer >= 1, got ${this.maxPageSize}`);
    const now = options.now ?? Date.now;
    this.book = new TierBook(options.universe ?? { primary: defaultUniverse() }, now);
    this.book.onChange((c) =>
      this.log.info({ account_id: c.account, kind: c.kind, symbol: c.symbol, leverage: c.leverage, before: c.before, after: c.after }, 'tier change'),
    );
    this.authenticator = new Authenticator({
      keys: options.keys ?? [{ publicKey: DEMO_PUBLIC_KEY, secretKey: DEMO_SECRET_KEY, accounts: ['primary'] }],
      jwts: options.jwts ?? [],
      clockSkewSec: options.clockSkewSec ?? 30,
      nonceWindowMs: options.nonceWindowMs ?? 15 * 60_000,
      strict: options.strict === true,
      now,
    });
    this.http = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }) : createHttpServer();
    this.http.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' }).end('This is a WebSocket endpoint.\n');
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes ?? 1024 * 1024, autoPong: false });
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.http.off('error', reject);
        this.boundPort = (this.http.address() as AddressInfo).port;
        this.log.info({ url: this.url, max_page_size: this.maxPageSize }, 'simulator listening');
        resolve();
      });
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    if (this.options.tls) return `wss://localhost:${this.boundPort}`;
    const host = this.options.host ?? '127.0.0.1';
    return `ws://${host.includes(':') ? `[${host}]` : host}:${this.boundPort}`;
  }

  get changeLog(): readonly SimChange[] {
    return this.book.changeLog;
  }

  // ---- upgrade and connection lifecycle ----

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const apiKeyQuery = url.searchParams.get('api_key');
    const injected = this.faults.take(['reject_auth'], (f) => (f.mode ?? this.failureMode) === 'http_401');
    if (injected.length > 0 || (this.failureMode === 'http_401' && !this.upgradeIdentityKnown(req, url))) {
      this.recordAuthFailure(injected.length > 0 ? 'injected' : 'upgrade_rejected', apiKeyQuery, null);
      const body = 'Unauthorized\n';
      socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, apiKeyQuery));
  }

  /** In http_401 mode the upgrade must name a known key or token (query or the CLI's headers). */
  private upgradeIdentityKnown(req: IncomingMessage, url: URL): boolean {
    const key = url.searchParams.get('api_key') ?? req.headers['x-qfex-public-key'];
    if (typeof key === 'string' && this.authenticator.knowsPublicKey(key)) return true;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const jwt = url.searchParams.get('jwt') ?? bearer;
    return typeof jwt === 'string' && this.authenticator.knowsJwt(jwt);
  }

  private onConnection(ws: WebSocket, apiKeyQuery: string | null): void {
    const conn: Connection = {
      id: this.nextConnectionId++,
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
    this.connections.add(conn);
    this.stats.connections++;
    this.stats.openConnections++;
    this.log.debug({ connection: conn.id, api_key: apiKeyQuery }, 'connection opened');

    this.addTimer(conn, setTimeout(() => {
      if (conn.state !== 'authenticated') {
        this.log.info({ connection: conn.id }, 'authentication deadline passed; closing');
        ws.close(1008, 'authentication deadline exceeded');
      }
    }, this.authDeadlineMs));

    ws.on('message', (data, isBinary) => {
      this.stats.framesReceived++;
      if (isBinary) {
        ws.close(1003, 'binary frames are not accepted');
        return;
      }
      const text = rawText(data);
      conn.queue = conn.queue
        .then(() => this.onText(conn, text))
        .catch((error: unknown) => {
          this.log.error({ connection: conn.id, err: error }, 'simulator failed to handle a message');
          this.sendError(conn, 'ServerError', 'internal simulator error', null);
        });
    });
    ws.on('ping', (data) => {
      if (conn.answerPings && !conn.closed) ws.pong(data);
    });
    ws.on('pong', () => {
      this.stats.pongsReceived++;
      conn.outstandingPings = 0;
    });
    ws.on('error', (error) => this.log.debug({ connection: conn.id, err: error }, 'connection error'));
    ws.on('close', (code) => {
      conn.closed = true;
      for (const timer of conn.timers) clearTimeout(timer);
      conn.timers.clear();
      this.connections.delete(conn);
      this.stats.openConnections--;
      this.log.debug({ connection: conn.id, code }, 'connection closed');
    });
  }

  private addTimer(conn: Connection, timer: NodeJS.Timeout): void {
    conn.timers.add(timer);
  }

  private sleep(conn: Connection, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        conn.timers.delete(timer);
        resolve();
      }, ms);
      conn.timers.add(timer);
      conn.ws.once('close', () => resolve());
    });
  }

  private drop(conn: Connection, closeCode: number | undefined, why: string): void {
    this.log.info({ connection: conn.id, close_code: closeCode ?? null }, `fault: ${why}`);
    if (closeCode === undefined) conn.ws.terminate();
    else conn.ws.close(closeCode, why.slice(0, 100));
  }

  private send(conn: Connection, frame: string | Buffer, after?: () => void): void {
    if (conn.closed || conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(frame, { binary: Buffer.isBuffer(frame) }, (error) => {
      if (error === undefined || error === null) after?.();
    });
  }

  private sendError(conn: Connection, code: string, message: string | null, incoming: unknown): void {
    this.stats.errorsSent[code] = (this.stats.errorsSent[code] ?? 0) + 1;
    this.log.debug({ connection: conn.id, code, message }, 'error frame');
    this.send(conn, errorFrame(this.legacy, code, message, incoming));
  }

  // ---- messages ----

  private async onText(conn: Connection, text: string): Promise<void> {
    if (conn.closed) return;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.sendError(conn, 'InvalidJSONFormat', 'message is not valid JSON', text);
      return;
    }
    if (!isRecord(message) || typeof message['type'] !== 'string') {
      this.sendError(conn, 'InvalidJSONFormat', 'expected an object {"type": <string>, "params": {...}}', message);
      return;
    }
    const type = message['type'];
    switch (type) {
      case 'auth':
        conn.authText = text;
        this.onAuth(conn, message);
        return;
      case 'get_available_leverage_levels':
      case 'get_user_leverage':
      case 'set_user_leverage':
        break;
      default:
        this.sendError(conn, 'InvalidJSONFormat', `unknown message type ${JSON.stringify(type)}`, message);
        return;
    }
    if (conn.state !== 'authenticated') {
      this.sendError(conn, 'PermissionDenied', 'not authenticated', message);
      return;
    }
    const params = this.readParams(conn, message);
    if (params === null) return;
    if (type === 'set_user_leverage') this.onSetLeverage(conn, message, params);
    else await this.onList(conn, message, params, type);
  }

  /** `params`, defaulting to {} when absent (InvalidJSONFormat in strict mode); null after an error frame. */
  private readParams(conn: Connection, message: Record<string, unknown>): Record<string, unknown> | null {
    const params = message['params'];
    if (params === undefined && this.options.strict !== true) return {};
    if (isRecord(params)) return params;
    this.sendError(conn, 'InvalidJSONFormat', '`params` must be an object', message);
    return null;
  }

  // ---- auth ----

  private onAuth(conn: Connection, message: Record<string, unknown>): void {
    if (conn.state === 'authenticated') {
      this.sendError(conn, 'AlreadyAuthenticated', 'this connection is already authenticated', message);
      return;
    }
    if (this.faults.take(['never_answer_auth']).length > 0) {
      conn.state = 'auth_pending';
      this.log.info({ connection: conn.id }, 'fault: auth left unanswered');
      return;
    }
    const echo = this.faults.take(['echo'], (f) => (f.at ?? 'auth') === 'auth')[0];
    if (echo !== undefined) {
      this.recordAuthFailure('injected', null, conn);
      this.sendError(conn, echo.code ?? 'PermissionDenied', `authentication failed for ${echoText(conn.authText ?? '', echo.encoding ?? 'raw')}`, message);
      conn.ws.close(1008, 'authentication failed');
      return;
    }
    const injected = this.faults.take(['reject_auth'], (f) => (f.mode ?? this.failureMode) !== 'http_401');
    if (injected[0] !== undefined) {
      this.rejectAuth(conn, message, 'injected', null, injected[0].mode ?? this.failureMode, injected[0].code);
      return;
    }
    const params = message['params'];
    const decision = isRecord(params) ? this.authenticator.verify(params, conn.apiKeyQuery) : ({ ok: false, reason: 'malformed', principal: null } as const);
    if (!decision.ok) {
      this.rejectAuth(conn, message, decision.reason, decision.principal, this.failureMode);
      return;
    }
    conn.state = 'authenticated';
    conn.account = decision.account;
    conn.principal = decision.principal;
    this.stats.authOk++;
    this.log.info({ connection: conn.id, principal: decision.principal, account_id: decision.account }, 'authenticated');
    for (const frame of this.hostility.aroundAuth('before_auth_answer')) this.send(conn, frame);
    this.send(conn, authSuccessFrame(this.legacy));
    for (const frame of this.hostility.aroundAuth('after_auth_answer')) this.send(conn, frame);
    for (const fault of this.faults.take(['stop_pings', 'ignore_client_pings', 'drop_before_page'], (f) => f.kind !== 'drop_before_page' || f.page === 1)) {
      if (fault.kind === 'stop_pings') conn.sendPings = false;
      else if (fault.kind === 'ignore_client_pings') conn.answerPings = false;
      else this.drop(conn, fault.closeCode, 'dropped before page 1');
    }
    this.startPings(conn);
  }

  private recordAuthFailure(reason: AuthFailureReason, principal: string | null, conn: Connection | null): void {
    this.stats.authFailed++;
    this.stats.authFailures[reason] = (this.stats.authFailures[reason] ?? 0) + 1;
    this.stats.lastAuthFailure = reason;
    this.log.info({ connection: conn?.id ?? null, principal, reason }, 'authentication refused');
  }

  private rejectAuth(conn: Connection, message: unknown, reason: AuthFailureReason, principal: string | null, mode: AuthFailureMode, code = 'PermissionDenied'): void {
    this.recordAuthFailure(reason, principal, conn);
    switch (mode) {
      case 'err_frame':
        // The echo carries the client's own message back, signature included, as a real server would.
        this.sendError(conn, code, code === 'RateLimited' ? rateLimitedMessage(20) : `authentication failed: ${AUTH_FAILURE_TEXT[reason]}`, message);
        break;
      case 'close':
        break;
      default: // authenticated_false, and http_401 for failures only visible after the upgrade
        this.send(conn, AUTH_FALSE_FRAME);
    }
    conn.ws.close(1008, 'authentication failed');
  }

  private startPings(conn: Connection): void {
    const timer = setInterval(() => {
      if (conn.closed || !conn.sendPings) return;
      if (conn.outstandingPings >= 2) {
        this.log.info({ connection: conn.id }, 'two pings unanswered; dropping the connection');
        conn.ws.terminate();
        return;
      }
      conn.outstandingPings++;
      this.stats.pingsSent++;
      conn.ws.ping();
    }, this.pingIntervalMs);
    this.addTimer(conn, timer);
  }

  // ---- leverage lists ----

  /** `limit`/`offset` as integers, or an InvalidParameter frame and null. Null/absent take the defaults. */
  private readPaging(conn: Connection, message: Record<string, unknown>, params: Record<string, unknown>): { limit: number; offset: number } | null {
    const limit = params['limit'] ?? 1000;
    const offset = params['offset'] ?? 0;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit <= 0) {
      this.sendError(conn, 'InvalidParameter', `limit must be a positive integer, got ${JSON.stringify(limit)}`, message);
      return null;
    }
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) {
      this.sendError(conn, 'InvalidParameter', `offset must be a non-negative integer, got ${JSON.stringify(offset)}`, message);
      return null;
    }
    return { limit, offset };
  }

  private async onList(
    conn: Connection,
    message: Record<string, unknown>,
    params: Record<string, unknown>,
    type: 'get_available_leverage_levels' | 'get_user_leverage',
  ): Promise<void> {
    const paging = this.readPaging(conn, message, params);
    if (paging === null) return;
    const account = conn.account!;
    const servedLimit = Math.min(paging.limit, this.maxPageSize);
    const page = type === 'get_available_leverage_levels' ? ++conn.pages : 0;
    const request: SimPageRequest = { connection: conn.id, account, type, page, limit: paging.limit, servedLimit, offset: paging.offset, rows: -1 };
    this.stats.pageRequests++;
    this.stats.lastRequests.push(request);
    if (this.stats.lastRequests.length > RECENT_REQUESTS) this.stats.lastRequests.shift();

    if (type === 'get_user_leverage') {
      const rows = this.userLeverageRows(account).slice(paging.offset, paging.offset + servedLimit);
      request.rows = rows.length;
      this.send(conn, listFrame('user_leverage_response', rows.map((t) => wireRow(t, this.legacy))));
      return;
    }

    const fired = this.faults.take(
      ['infinite_list', 'empty_list', 'delay_page', 'drop_at_page', 'never_answer_page', 'error_reply', 'bad_frame', 'malformed_row', 'echo'],
      (f) => (f.kind !== 'echo' || f.at === 'page') && (!('page' in f) || f.page === undefined || f.page === page),
    );
    const byKind = <K extends Fault['kind']>(kind: K) => fired.find((f) => f.kind === kind) as FaultOf<K> | undefined;
    if (byKind('infinite_list')) conn.listMode = 'infinite';
    if (byKind('empty_list')) conn.listMode = 'empty';
    const delay = byKind('delay_page');
    if (delay) {
      this.log.info({ connection: conn.id, page, ms: delay.ms }, 'fault: page delayed');
      await this.sleep(conn, delay.ms);
      if (conn.closed) return;
    }
    const drop = byKind('drop_at_page');
    if (drop) return this.drop(conn, drop.closeCode, `dropped at page ${page}`);
    if (byKind('never_answer_page')) {
      this.log.info({ connection: conn.id, page }, 'fault: page left unanswered');
      return;
    }
    const echo = byKind('echo');
    if (echo) {
      const encoding = echo.encoding ?? 'raw';
      const quoted = `request ${echoText(JSON.stringify(message), encoding)} refused on the session opened by ${echoText(conn.authText ?? '', encoding)}`;
      return this.sendError(conn, echo.code ?? 'InvalidParameter', quoted, message);
    }
    const error = byKind('error_reply');
    if (error) {
      const hint = error.code === 'RateLimited' ? rateLimitedMessage(error.retryAfterMs ?? 250) : `injected ${error.code}`;
      this.log.info({ connection: conn.id, page, code: error.code }, 'fault: error reply');
      return this.sendError(conn, error.code, error.message ?? hint, message);
    }

    const plan = this.hostility.planPage(conn, page, paging.offset);
    for (const frame of plan.before) this.send(conn, frame);
    if (plan.delayMs > 0) {
      await this.sleep(conn, plan.delayMs);
      if (conn.closed) return;
    }
    if (plan.answer !== null) {
      request.rows = plan.answer.rows;
      return this.send(conn, plan.answer.json);
    }
    const rows = this.pageRows(conn, paging.offset, plan.servedRows ?? servedLimit);
    const bad = byKind('bad_frame');
    if (bad) return this.sendBadFrame(conn, bad, rows, page);
    const malformed = byKind('malformed_row');
    let json: string;
    if (malformed) {
      const wire: unknown[] = rows.map((t) => wireRow(t, this.legacy));
      const index = Math.min(malformed.index ?? 0, wire.length);
      wire.splice(index, index < wire.length ? 1 : 0, malformed.row);
      this.log.info({ connection: conn.id, page, index }, 'fault: malformed row');
      json = listFrame('available_leverage_levels_response', wire);
    } else {
      json = this.pageJson(conn, account, paging.offset, servedLimit, rows);
    }
    request.rows = rows.length;
    this.hostility.rememberPage(conn, json);
    this.send(conn, json, () => this.afterPageWritten(conn, page, rows.length, 'written'));
    this.afterPageWritten(conn, page, rows.length, 'queued');
  }

  /** The rows of one page, honouring the connection's list mode (normal, infinite, empty). */
  private pageRows(conn: Connection, offset: number, limit: number): SimTier[] {
    if (conn.listMode === 'empty') return [];
    const all = this.book.rows(conn.account!);
    const rows = all.slice(offset, offset + limit) as SimTier[];
    if (conn.listMode === 'infinite') {
      for (let i = Math.max(offset, all.length); rows.length < limit; i++) rows.push(makeTier(`INF${String(i).padStart(9, '0')}-USD`, 1, 100_000));
    }
    return rows;
  }

  private pageJson(conn: Connection, account: string, offset: number, limit: number, rows: readonly SimTier[]): string {
    const cacheable = this.options.preserializePages === true && conn.listMode === 'normal';
    const key = `${account}\u0000${offset}\u0000${limit}`;
    const version = this.book.version(account);
    if (cacheable) {
      const hit = this.pageCache.get(key);
      if (hit !== undefined && hit.version === version) return hit.json;
    }
    const json = listFrame('available_leverage_levels_response', rows.map((t) => wireRow(t, this.legacy)));
    if (cacheable) this.pageCache.set(key, { version, json });
    return json;
  }

  /**
   * Faults that follow a page. List shifts happen as soon as the page is queued (before the client
   * can ask for the next one); drops wait until the page is written, so the client receives it.
   */
  private afterPageWritten(conn: Connection, page: number, rowCount: number, stage: 'queued' | 'written'): void {
    if (stage === 'queued') {
      for (const fault of this.faults.take(['shift_insert', 'shift_delete'], (f) => f.afterPage === page)) this.shiftList(conn, fault);
      return;
    }
    const drops = this.faults.take(['drop_before_page', 'drop_after_last_page'], (f) =>
      f.kind === 'drop_before_page' ? f.page === page + 1 : rowCount === 0,
    );
    const drop = drops[0];
    if (drop && !conn.closed) this.drop(conn, drop.closeCode, drop.kind === 'drop_before_page' ? `dropped before page ${page + 1}` : 'dropped after the last page');
  }

  private shiftList(conn: Connection, fault: FaultOf<'shift_insert' | 'shift_delete'>): void {
    const account = conn.account!;
    const first = this.book.rows(account)[0];
    if (fault.kind === 'shift_delete') {
      if (first === undefined) return;
      this.log.info({ connection: conn.id, symbol: first.symbol, leverage: first.leverage }, 'fault: row deleted before the offset');
      this.book.removeTier(account, first.symbol, first.leverage);
      return;
    }
    let tier = fault.tier === undefined ? undefined : cloneTier(fault.tier);
    if (tier === undefined) {
      // Half a step above the first row's leverage sorts right after it: before any offset >= 2.
      const symbol = first?.symbol ?? 'AAPL-USD';
      let leverage = Number(first?.leverage ?? 1) + 0.5;
      while (this.book.find(account, symbol, leverage) !== undefined) leverage += 0.25;
      tier = makeTier(symbol, leverage, 200_000);
    }
    this.log.info({ connection: conn.id, symbol: tier.symbol, leverage: tier.leverage }, 'fault: row inserted before the offset');
    this.book.addTier(account, tier);
  }

  private sendBadFrame(conn: Connection, fault: FaultOf<'bad_frame'>, rows: readonly SimTier[], page: number): void {
    this.log.info({ connection: conn.id, page, frame: fault.frame }, 'fault: bad frame');
    switch (fault.frame) {
      case 'non_json':
        return this.send(conn, 'this is not JSON {');
      case 'wrong_shape':
        return this.send(conn, JSON.stringify({ available_leverage_levels_response: { rows: 'not an array' } }));
      case 'binary':
        return this.send(conn, Buffer.from([0x00, 0x01, 0x02, 0x03, 0xff]));
      case 'unexpected_key':
        return this.send(conn, JSON.stringify({ unexpected_response: rows.map((t) => wireRow(t, this.legacy)) }));
      case 'deep':
        return this.send(conn, `{"available_leverage_levels_response":[${'['.repeat(DEEP_NESTING)}${']'.repeat(DEEP_NESTING)}]}`);
      case 'oversized': {
        const padding = 'x'.repeat(fault.bytes ?? DEFAULT_OVERSIZED_BYTES);
        return this.send(conn, JSON.stringify({ available_leverage_levels_response: rows.map((t) => wireRow(t, this.legacy)), padding }));
      }
    }
  }

  // ---- user leverage ----

  /** One row per symbol: the chosen leverage, or the symbol's lowest. */
  private userLeverageRows(account: string): SimTier[] {
    const chosen = this.userLeverage.get(account);
    const bySymbol = new Map<string, SimTier>();
    for (const tier of this.book.rows(account)) {
      const pick = chosen?.get(tier.symbol);
      const current = bySymbol.get(tier.symbol);
      if (pick !== undefined ? Number(tier.leverage) === Number(pick) : current === undefined) bySymbol.set(tier.symbol, tier);
    }
    return [...bySymbol.values()];
  }

  private onSetLeverage(conn: Connection, message: Record<string, unknown>, params: Record<string, unknown>): void {
    const { symbol, leverage } = params;
    const account = conn.account!;
    if (typeof symbol !== 'string' || typeof leverage !== 'number' || this.book.find(account, symbol, leverage) === undefined) {
      this.sendError(conn, 'InvalidParameter', 'unknown symbol or leverage level', message);
      return;
    }
    let chosen = this.userLeverage.get(account);
    if (chosen === undefined) this.userLeverage.set(account, (chosen = new Map()));
    chosen.set(symbol, String(leverage));
    this.send(conn, this.options.ackShape === 'ack' ? JSON.stringify({ ack: { incoming_message: message } }) : '{"ack_response":true}');
  }

  // ---- the Simulator API ----

  inject(fault: Fault): void {
    this.faults.inject(fault);
    this.log.debug({ fault: fault.kind }, 'fault injected');
  }

  clearFaults(): void {
    this.faults.clear();
  }

  pendingFaults(): Fault[] {
    return this.faults.list();
  }

  firedFaults(): Fault[] {
    return this.faults.history();
  }

  tiers(account = 'primary'): SimTier[] {
    return this.book.tiers(account);
  }

  accounts(): string[] {
    return this.book.accountIds();
  }

  editTier(account: string, symbol: string, leverage: string | number, patch: TierPatch): SimChange {
    return this.book.editTier(account, symbol, leverage, patch);
  }

  removeTier(account: string, symbol: string, leverage: string | number): SimChange {
    return this.book.removeTier(account, symbol, leverage);
  }

  addTier(account: string, tier: SimTier): SimChange {
    return this.book.addTier(account, tier);
  }

  listSymbol(account: string, symbol: string, options?: { levels?: Array<number | string>; baseNotional?: number }): SimChange[] {
    return this.book.listSymbol(account, symbol, options);
  }

  delistSymbol(account: string, symbol: string): SimChange[] {
    return this.book.delistSymbol(account, symbol);
  }

  setTiers(account: string, tiers: SimTier[]): SimChange[] {
    return this.book.setTiers(account, tiers);
  }

  mark(): number {
    return this.book.mark();
  }

  revertTo(mark: number): SimChange[] {
    return this.book.revertTo(mark);
  }

  dropConnections(): void {
    for (const conn of this.connections) conn.ws.terminate();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const closed = [...this.connections].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.ws.readyState === WebSocket.CLOSED) return resolve();
          conn.ws.once('close', () => resolve());
          conn.ws.close(1001, 'server shutting down');
          // A client that never answers the close frame must not hold the shutdown.
          setTimeout(() => conn.ws.terminate(), 200).unref();
        }),
    );
    await Promise.all(closed);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
    this.log.info({ url: this.url }, 'simulator stopped');
  }
}
