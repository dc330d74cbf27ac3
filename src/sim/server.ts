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
 *
 * This module is the wiring: the HTTP(S) server, upgrades and routing of each message. The concerns
 * live beside it: simulator-types.ts (the public types), connection.ts (transport, sending, pings,
 * close), handshake.ts (upgrade refusal and `auth`), leverage.ts (the leverage requests),
 * page-faults.ts and hostile.ts (faults at page requests).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { silentLogger, type Logger } from '../log.ts';
import { Authenticator } from './auth.ts';
import { TierBook, type SimChange, type TierPatch } from './book.ts';
import { closeConnection, openConnection, sendError, type Connection } from './connection.ts';
import { isRecord, type SimContext } from './context.ts';
import { FaultQueue, type Fault } from './faults.ts';
import { Handshake } from './handshake.ts';
import { Hostility } from './hostile.ts';
import { LeverageDesk } from './leverage.ts';
import { defaultUniverse, type SimTier } from './universe.ts';
import type { SimStats, Simulator, SimulatorOptions } from './simulator-types.ts';

/** Demo credentials: they belong to no real account and may be printed. */
export const DEMO_PUBLIC_KEY = 'qfex_pub_demo_tierwatch';
export const DEMO_SECRET_KEY = 'qfex_secret_demo_tierwatch_not_a_real_key';

export type { SimPageRequest, SimStats, Simulator, SimulatorOptions } from './simulator-types.ts';

const MAX_PAGE_DEFAULT = 1000;

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

  readonly #options: SimulatorOptions;
  readonly #log: Logger;
  readonly #maxPageSize: number;
  readonly #authDeadlineMs: number;
  readonly #book: TierBook;
  readonly #faults = new FaultQueue();
  /** The state every handler shares (see context.ts). */
  readonly #ctx: SimContext;
  readonly #handshake: Handshake;
  readonly #leverage: LeverageDesk;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<Connection>();
  #nextConnectionId = 1;
  #boundPort = 0;
  #closing: Promise<void> | null = null;

  constructor(options: SimulatorOptions) {
    this.#options = options;
    this.#log = (options.logger ?? silentLogger()).child({ component: 'simulator' });
    const legacy = options.legacy ?? {};
    this.#maxPageSize = options.maxPageSize ?? MAX_PAGE_DEFAULT;
    this.#authDeadlineMs = options.authDeadlineMs ?? 60_000;
    if (!Number.isInteger(this.#maxPageSize) || this.#maxPageSize < 1) {
      throw new RangeError(`Expected \`maxPageSize\` to be an integer >= 1, got ${this.#maxPageSize}`);
    }
    const now = options.now ?? Date.now;
    this.#book = new TierBook(options.universe ?? { primary: defaultUniverse() }, now);
    this.#book.onChange((c) =>
      this.#log.info(
        {
          account_id: c.account,
          kind: c.kind,
          symbol: c.symbol,
          leverage: c.leverage,
          before: c.before,
          after: c.after,
        },
        'tier change',
      ),
    );
    this.#ctx = {
      options,
      log: this.#log,
      legacy,
      stats: this.stats,
      faults: this.#faults,
      hostility: new Hostility(this.#faults, legacy),
      book: this.#book,
    };
    const authenticator = new Authenticator({
      keys: options.keys ?? [{ publicKey: DEMO_PUBLIC_KEY, secretKey: DEMO_SECRET_KEY, accounts: ['primary'] }],
      jwts: options.jwts ?? [],
      clockSkewSec: options.clockSkewSec ?? 30,
      nonceWindowMs: options.nonceWindowMs ?? 15 * 60_000,
      strict: options.strict === true,
      now,
    });
    this.#handshake = new Handshake(this.#ctx, {
      authenticator,
      failureMode: options.authFailureMode ?? 'authenticated_false',
      pingIntervalMs: options.pingIntervalMs ?? 15_000,
    });
    this.#leverage = new LeverageDesk(this.#ctx, this.#maxPageSize);
    this.#http = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }) : createHttpServer();
    this.#http.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' }).end('This is a WebSocket endpoint.\n');
    });
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes ?? 1024 * 1024,
      autoPong: false,
    });
    this.#http.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(this.#options.port ?? 0, this.#options.host ?? '127.0.0.1', () => {
        this.#http.off('error', reject);
        this.#boundPort = (this.#http.address() as AddressInfo).port;
        this.#log.info({ url: this.url, max_page_size: this.#maxPageSize }, 'simulator listening');
        resolve();
      });
    });
  }

  get port(): number {
    return this.#boundPort;
  }

  get url(): string {
    if (this.#options.tls) return `wss://localhost:${this.#boundPort}`;
    const host = this.#options.host ?? '127.0.0.1';
    return `ws://${host.includes(':') ? `[${host}]` : host}:${this.#boundPort}`;
  }

  get changeLog(): readonly SimChange[] {
    return this.#book.changeLog;
  }

  // ---- upgrade and message routing ----

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://simulator');
    if (!this.#handshake.admitUpgrade(req, socket, url)) return;
    const apiKeyQuery = url.searchParams.get('api_key');
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, apiKeyQuery));
  }

  #onConnection(ws: WebSocket, apiKeyQuery: string | null): void {
    const conn = openConnection(this.#ctx, ws, this.#nextConnectionId++, apiKeyQuery, this.#authDeadlineMs, {
      onText: (c, text) => this.#onText(c, text),
      onClosed: (c) => this.#connections.delete(c),
    });
    this.#connections.add(conn);
  }

  async #onText(conn: Connection, text: string): Promise<void> {
    if (conn.closed) return;
    const ctx = this.#ctx;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      sendError(ctx, conn, 'InvalidJSONFormat', 'message is not valid JSON', text);
      return;
    }
    if (!isRecord(message) || typeof message['type'] !== 'string') {
      sendError(ctx, conn, 'InvalidJSONFormat', 'expected an object {"type": <string>, "params": {...}}', message);
      return;
    }
    const type = message['type'];
    switch (type) {
      case 'auth':
        conn.authText = text;
        this.#handshake.onAuth(conn, message);
        return;
      case 'get_available_leverage_levels':
      case 'get_user_leverage':
      case 'set_user_leverage':
        break;
      default:
        sendError(ctx, conn, 'InvalidJSONFormat', `unknown message type ${JSON.stringify(type)}`, message);
        return;
    }
    if (conn.state !== 'authenticated') {
      sendError(ctx, conn, 'PermissionDenied', 'not authenticated', message);
      return;
    }
    const params = this.#readParams(conn, message);
    if (params === null) return;
    if (type === 'set_user_leverage') this.#leverage.onSetLeverage(conn, message, params);
    else await this.#leverage.onList(conn, message, params, type);
  }

  /** `params`, defaulting to {} when absent (InvalidJSONFormat in strict mode); null after an error frame. */
  #readParams(conn: Connection, message: Record<string, unknown>): Record<string, unknown> | null {
    const params = message['params'];
    if (params === undefined && this.#options.strict !== true) return {};
    if (isRecord(params)) return params;
    sendError(this.#ctx, conn, 'InvalidJSONFormat', '`params` must be an object', message);
    return null;
  }

  // ---- the Simulator API ----

  inject(fault: Fault): void {
    this.#faults.inject(fault);
    this.#log.debug({ fault: fault.kind }, 'fault injected');
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  pendingFaults(): Fault[] {
    return this.#faults.list();
  }

  firedFaults(): Fault[] {
    return this.#faults.history();
  }

  tiers(account = 'primary'): SimTier[] {
    return this.#book.tiers(account);
  }

  accounts(): string[] {
    return this.#book.accountIds();
  }

  editTier(account: string, symbol: string, leverage: string | number, patch: TierPatch): SimChange {
    return this.#book.editTier(account, symbol, leverage, patch);
  }

  removeTier(account: string, symbol: string, leverage: string | number): SimChange {
    return this.#book.removeTier(account, symbol, leverage);
  }

  addTier(account: string, tier: SimTier): SimChange {
    return this.#book.addTier(account, tier);
  }

  listSymbol(
    account: string,
    symbol: string,
    options?: { levels?: Array<number | string>; baseNotional?: number },
  ): SimChange[] {
    return this.#book.listSymbol(account, symbol, options);
  }

  delistSymbol(account: string, symbol: string): SimChange[] {
    return this.#book.delistSymbol(account, symbol);
  }

  setTiers(account: string, tiers: SimTier[]): SimChange[] {
    return this.#book.setTiers(account, tiers);
  }

  mark(): number {
    return this.#book.mark();
  }

  revertTo(mark: number): SimChange[] {
    return this.#book.revertTo(mark);
  }

  dropConnections(): void {
    for (const conn of this.#connections) conn.ws.terminate();
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    await Promise.all([...this.#connections].map((conn) => closeConnection(conn)));
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    await new Promise<void>((resolve) => {
      this.#http.close(() => resolve());
      this.#http.closeAllConnections();
    });
    this.#log.info({ url: this.url }, 'simulator stopped');
  }
}
