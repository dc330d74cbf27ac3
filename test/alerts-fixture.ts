/**
 * Alert test fixtures: a webhook receiver on 127.0.0.1 whose behaviour each test scripts (answer,
 * fail with an HTTP status such as 500 or 400, hang past the sender's timeout), a temp history
 * with a HistoryStore, and a helper that records one sweep of given tiers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../src/config.ts';
import type { Tier } from '../src/history/tier.ts';
import { createLogger, type Logger } from '../src/log.ts';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { LogCapture } from './helpers/harness.ts';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** 'ok' (200), an HTTP status to answer with, or 'hang' (never answer). */
export type Behaviour = 'ok' | number | 'hang';

export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  /** Decides how to answer the n-th request (0-based); 'ok' by default. */
  behaviour: (index: number, request: ReceivedRequest) => Behaviour = () => 'ok';
  readonly #hanging: ServerResponse[] = [];
  #server: Server | null = null;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/secret-path-token`;
  }

  /** Starts listening (again, on the same port when it listened before). */
  async listen(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const request = {
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        const index = this.requests.length;
        this.requests.push(request);
        const behaviour = this.behaviour(index, request);
        if (behaviour === 'hang') {
          this.#hanging.push(res);
          return;
        }
        res.writeHead(behaviour === 'ok' ? 200 : behaviour, { 'content-type': 'text/plain' });
        res.end(behaviour === 'ok' ? 'ok' : 'boom');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** How many requests ('hang') the receiver never answered, whether or not the sender gave up. */
  get unanswered(): number {
    return this.#hanging.filter((res) => !res.writableEnded).length;
  }

  /** How many unanswered requests are still open right now: the sender is still waiting. */
  get hanging(): number {
    return this.#hanging.filter((res) => !res.writableEnded && !res.destroyed).length;
  }

  /** Stops listening; new connections are refused until listen() again. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    for (const res of this.#hanging.splice(0)) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The distinct notifications received, in first-arrival order, by Idempotency-Key. */
  distinct(): ReceivedRequest[] {
    const seen = new Set<string>();
    return this.requests.filter((request) => {
      const key = String(request.headers['idempotency-key']);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  bodies(): Array<Record<string, any>> {
    return this.distinct().map((request) => JSON.parse(request.body) as Record<string, any>);
  }
}

export interface AlertHistory {
  dir: string;
  dbPath: string;
  db: StoreDb;
  store: HistoryStore;
  logs: LogCapture;
  logger: Logger;
  config(env: Record<string, string>): Config;
  /** Opens a fresh connection and store on the same file (the old ones must be closed first). */
  reopen(): void;
  close(): void;
}

export function alertHistory(): AlertHistory {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-alerts-'));
  const dbPath = join(dir, 'history.db');
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const history: AlertHistory = {
    dir,
    dbPath,
    db: openDatabase(dbPath, { logger }),
    store: undefined as unknown as HistoryStore,
    logs,
    logger,
    config: (env) =>
      loadConfig({
        TIERWATCH_DB: dbPath,
        // Generous: a loaded machine must not turn a slow answer into a retry the test does not expect.
        TIERWATCH_WEBHOOK_TIMEOUT: '10s',
        TIERWATCH_WEBHOOK_RETRIES: '1',
        TIERWATCH_BACKOFF_BASE: '1ms',
        TIERWATCH_BACKOFF_MAX: '2ms',
        TIERWATCH_HEALTH_MAX_AGE: '10m',
        ...env,
      }),
    reopen() {
      history.db = openDatabase(dbPath, { logger });
      history.store = new HistoryStore(history.db, { logger });
    },
    close() {
      history.db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  history.store = new HistoryStore(history.db, { logger });
  return history;
}

export function tier(
  symbol: string,
  leverage: string,
  initial_margin: number,
  maintenance_margin: number,
  max_notional: number,
): Tier {
  return { symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id: null };
}

/** Records one successful sweep of `tiers` observed at `at`; returns its run id. */
export function sweep(store: HistoryStore, tiers: Tier[], at: Date, accountId = 'primary'): number {
  const runId = store.startRun({ accountId, endpoint: 'wss://sim.test', publicKey: null, startedAt: at });
  store.commitSweep(runId, { accountId, observedAt: at, finishedAt: at, tiers, pages: 1, maxRemovalRatio: 1 });
  return runId;
}

/** Lets the post-commit kick (setImmediate) fire. */
export function afterCommit(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
