/**
 * Test fixture of the query tests: a real SQLite file in a temp dir, written through the real
 * HistoryStore with explicit observedAt times, and the CLI run in process against it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import type { Tier } from '../src/history/tier.ts';
import { runCliCaptured } from './helpers/harness.ts';

export const ENDPOINT = 'wss://sim.test/';

export function tier(
  symbol: string,
  leverage: string,
  initial_margin: number,
  maintenance_margin: number,
  max_notional: number,
): Tier {
  return { symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id: null };
}

export interface TempHistory {
  dir: string;
  dbPath: string;
  db: StoreDb;
  store: HistoryStore;
  /** One successful sweep of `accountId` observed at `at`; returns its run_id. */
  sweep(accountId: string, at: string, tiers: Tier[]): number;
  /** One failed run started at `at`; returns its run_id. */
  fail(accountId: string, at: string, status?: 'failed' | 'aborted'): number;
  close(): void;
}

export function tempHistory(): TempHistory {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-query-'));
  const dbPath = path.join(dir, 'history.db');
  const db = openDatabase(dbPath);
  const store = new HistoryStore(db);
  return {
    dir,
    dbPath,
    db,
    store,
    sweep(accountId, at, tiers) {
      const when = new Date(at);
      const runId = store.startRun({
        accountId,
        endpoint: ENDPOINT,
        publicKey: 'test-public-key',
        startedAt: new Date(when.getTime() - 1000),
      });
      store.commitSweep(runId, {
        accountId,
        observedAt: when,
        finishedAt: new Date(when.getTime() + 5),
        tiers,
        pages: 1,
        maxRemovalRatio: 1,
      });
      return runId;
    },
    fail(accountId, at, status = 'failed') {
      const when = new Date(at);
      const runId = store.startRun({ accountId, endpoint: ENDPOINT, publicKey: 'test-public-key', startedAt: when });
      store.failRun(runId, {
        status,
        code: 'QFEX_TIMEOUT',
        message: 'page 2 did not arrive in time',
        pages: 1,
        finishedAt: new Date(when.getTime() + 10),
      });
      return runId;
    },
    close() {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tierwatch <argv>` in process against `dbPath`, stdout not a terminal unless `tty`. */
export async function cli(
  dbPath: string,
  argv: string[],
  options: { tty?: boolean; columns?: number } = {},
): Promise<CliResult> {
  const { code, stdout, stderr } = await runCliCaptured(argv, {
    env: { TIERWATCH_DB: dbPath, LOG_LEVEL: 'silent' },
    tty: options.tty ?? false,
    ...(options.columns === undefined ? {} : { columns: options.columns }),
  });
  return { code, stdout, stderr };
}

/** The JSON output of a successful command. */
export async function cliJson<T = unknown>(dbPath: string, argv: string[]): Promise<T> {
  const result = await cli(dbPath, [...argv, '--format', 'json']);
  if (result.code !== 0) throw new Error(`tierwatch ${argv.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
