/**
 * The simulator's public types: how it is started (`SimulatorOptions`), what it counts and records
 * (`SimStats`, `SimPageRequest`), and the handle tests and commands drive it through (`Simulator`).
 * The server that implements them is server.ts.
 */
import type { Logger } from '../log.ts';
import type { AuthFailureReason, SimJwt, SimKeyPair } from './auth.ts';
import type { SimChange, TierPatch } from './book.ts';
import type { AuthFailureMode, Fault } from './faults.ts';
import type { LegacyOptions } from './frames.ts';
import type { SimTier } from './universe.ts';

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
  listSymbol(
    account: string,
    symbol: string,
    options?: { levels?: Array<number | string>; baseNotional?: number },
  ): SimChange[];
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
