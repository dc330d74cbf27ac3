/**
 * End-to-end fixtures: a simulator on a loopback port, a temp database file, and a Config with
 * millisecond timeouts and backoff so fault tests stay fast.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { runCli } from '../../src/program.ts';
import {
  DEMO_PUBLIC_KEY,
  DEMO_SECRET_KEY,
  startSimulator,
  type Simulator,
  type SimulatorOptions,
} from '../../src/sim/index.ts';
import { openDatabase, type StoreDb } from '../../src/store/db.ts';
import { HistoryStore } from '../../src/store/history-store.ts';

/** Collects log lines as parsed objects, so tests can assert on them. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      this.raw.push(line);
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    callback();
  }
  text(): string {
    return this.raw.join('\n');
  }
}

export const FAST_ENV: Record<string, string> = {
  TIERWATCH_CONNECT_TIMEOUT: '2s',
  TIERWATCH_AUTH_TIMEOUT: '2s',
  TIERWATCH_REQUEST_TIMEOUT: '2s',
  TIERWATCH_IDLE_TIMEOUT: '5s',
  TIERWATCH_BACKOFF_BASE: '1ms',
  TIERWATCH_BACKOFF_MAX: '20ms',
  LOG_LEVEL: 'debug',
};

export interface Harness {
  dir: string;
  dbPath: string;
  sim: Simulator;
  db: StoreDb;
  store: HistoryStore;
  logs: LogCapture;
  logger: Logger;
  env: Record<string, string>;
  config(extra?: Record<string, string>): Config;
  close(): Promise<void>;
}

export async function startHarness(
  simOptions: SimulatorOptions = {},
  env: Record<string, string> = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-test-'));
  const dbPath = join(dir, 'history.db');
  const sim = await startSimulator({ host: '127.0.0.1', port: 0, ...simOptions });
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const db = openDatabase(dbPath, { logger });
  const store = new HistoryStore(db, { logger });
  const baseEnv = {
    ...FAST_ENV,
    QFEX_WS_URL: sim.url,
    QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY,
    QFEX_SECRET_KEY: DEMO_SECRET_KEY,
    TIERWATCH_DB: dbPath,
    ...env,
  };
  return {
    dir,
    dbPath,
    sim,
    db,
    store,
    logs,
    logger,
    env: baseEnv,
    config: (extra = {}) => loadConfig({ ...baseEnv, ...extra }),
    async close() {
      db.close();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CapturedRun {
  code: number;
  stdout: string;
  stderr: string;
  logs: LogCapture;
}

/** Runs `tierwatch <argv>` in process with captured stdout, stderr and log lines. */
export async function runCliCaptured(
  argv: string[],
  options: { env?: Record<string, string | undefined>; tty?: boolean; columns?: number; signal?: AbortSignal } = {},
): Promise<CapturedRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const logs = new LogCapture();
  const code = await runCli(argv, {
    stdout,
    stderr,
    env: options.env ?? {},
    stdoutIsTTY: options.tty ?? false,
    ...(options.columns === undefined ? {} : { stdoutColumns: options.columns }),
    signal: options.signal ?? new AbortController().signal,
    logDestination: logs,
  });
  return { code, stdout: out, stderr: err, logs };
}
