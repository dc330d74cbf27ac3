/**
 * Shared fixtures of the fault, crash and secrets tests (issue 5): dumps of the history to compare
 * before and after a failed attempt, the net changes the simulator made between two states (what a
 * sweep must record), a resolver that can be told to fail, throwaway TLS material, a recording
 * WebSocket proxy that captures what the client really sends, child-process runs of the CLI, and a
 * search for secrets in every form they could leak in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, existsSync } from 'node:fs';
import type { LookupFunction } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type Database from 'better-sqlite3';
import { normalizeLeverage } from '../../src/history/tier.ts';
import type { SimTier } from '../../src/sim/index.ts';
import type { ChangeRecord } from '../../src/store/history-store.ts';
import { openDatabase } from '../../src/store/db.ts';
import { rawText } from '../../src/sim/raw-data.ts';
import { loopbackLookup } from './network.ts';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

// ---- the history, as the views show it ----

export interface HistoryDump {
  versions: unknown[];
  changes: unknown[];
}

/** Every row of tier_versions and tier_changes, in a stable order. */
export function historyDump(sqlite: Database.Database): HistoryDump {
  return {
    versions: sqlite.prepare('SELECT * FROM tier_versions ORDER BY account_id, symbol, leverage, valid_from').all(),
    changes: sqlite.prepare('SELECT * FROM tier_changes ORDER BY run_id, account_id, symbol, leverage').all(),
  };
}

/** The history of the database file at `dbPath`, read through a read-only connection. */
export function historyDumpOf(dbPath: string): HistoryDump {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    return historyDump(db.sqlite);
  } finally {
    db.close();
  }
}

export interface LedgerRow {
  run_id: number;
  account_id: string;
  status: string;
  error_code: string | null;
  error_message: string | null;
  pages: number | null;
  changes: number | null;
  observed_at: string | null;
}

export function ledgerRow(sqlite: Database.Database, runId: number): LedgerRow {
  const row = sqlite.prepare('SELECT * FROM runs WHERE run_id = ?').get(runId) as LedgerRow | undefined;
  if (row === undefined) throw new Error(`no ledger row for run ${runId}`);
  return row;
}

export function ledger(sqlite: Database.Database): LedgerRow[] {
  return sqlite.prepare('SELECT * FROM runs ORDER BY run_id').all() as LedgerRow[];
}

/** `PRAGMA integrity_check` of the file, through its own connection: 'ok' when sound. */
export function integrityOf(dbPath: string): string {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    return (db.sqlite.pragma('integrity_check') as Array<{ integrity_check: string }>)
      .map((row) => row.integrity_check)
      .join('; ');
  } finally {
    db.close();
  }
}

/**
 * The shape invariants of a history no crash may break: no version or change belongs to a run that
 * did not end ok; per tier at most one open version; versions of one tier never overlap. Returns
 * the violations (empty when sound).
 */
export function historyViolations(sqlite: Database.Database): string[] {
  const problems: string[] = [];
  const orphanVersions = sqlite
    .prepare(`SELECT count(*) AS n FROM tier_versions v JOIN runs r ON r.run_id = v.run_id WHERE r.status <> 'ok'`)
    .get() as { n: number };
  if (orphanVersions.n > 0) problems.push(`${orphanVersions.n} version(s) written by a run that did not end ok`);
  const orphanChanges = sqlite
    .prepare(`SELECT count(*) AS n FROM tier_changes c JOIN runs r ON r.run_id = c.run_id WHERE r.status <> 'ok'`)
    .get() as { n: number };
  if (orphanChanges.n > 0) problems.push(`${orphanChanges.n} change(s) written by a run that did not end ok`);
  const doubleOpen = sqlite
    .prepare(`SELECT account_id, symbol, leverage, count(*) AS n FROM tiers_current GROUP BY 1, 2, 3 HAVING n > 1`)
    .all();
  if (doubleOpen.length > 0) problems.push(`tiers with two open versions: ${JSON.stringify(doubleOpen)}`);
  const overlaps = sqlite
    .prepare(
      `SELECT a.symbol, a.leverage FROM tier_versions a JOIN tier_versions b
         ON a.account_id = b.account_id AND a.symbol = b.symbol AND a.leverage = b.leverage AND a.valid_from < b.valid_from
        WHERE a.valid_to IS NULL OR a.valid_to > b.valid_from`,
    )
    .all();
  if (overlaps.length > 0) problems.push(`overlapping versions: ${JSON.stringify(overlaps.slice(0, 5))}`);
  return problems;
}

// ---- what a sweep must record ----

function trackedKey(tier: SimTier): string {
  return `${tier.symbol} ${normalizeLeverage(tier.leverage)}`;
}

function sameTracked(a: SimTier, b: SimTier): boolean {
  return (
    Object.is(a.initial_margin, b.initial_margin) &&
    Object.is(a.maintenance_margin, b.maintenance_margin) &&
    Object.is(a.max_notional, b.max_notional)
  );
}

/**
 * The net changes from one tier set to another as sorted "kind symbol leverage" lines: what the
 * history must record for a sweep of `after` following a sweep of `before`. Only the tracked values
 * count (a new exchange row id alone is not a tier change).
 */
export function netChanges(before: readonly SimTier[], after: readonly SimTier[]): string[] {
  const old = new Map(before.map((tier) => [trackedKey(tier), tier]));
  const lines: string[] = [];
  for (const tier of after) {
    const key = trackedKey(tier);
    const previous = old.get(key);
    old.delete(key);
    if (previous === undefined) lines.push(`added ${key}`);
    else if (!sameTracked(previous, tier)) lines.push(`changed ${key}`);
  }
  for (const key of old.keys()) lines.push(`removed ${key}`);
  return lines.sort();
}

/** The same lines for the changes a sweep recorded. */
export function recordedChanges(
  changes: ReadonlyArray<Pick<ChangeRecord, 'change' | 'symbol' | 'leverage'>>,
): string[] {
  return changes.map((change) => `${change.change} ${change.symbol} ${change.leverage}`).sort();
}

/** The tiers_current rows of an account as the simulator's tier shape, to compare with sim.tiers(). */
export function currentTiers(sqlite: Database.Database, account = 'primary'): string[] {
  const rows = sqlite
    .prepare(
      'SELECT symbol, leverage, initial_margin, maintenance_margin, max_notional FROM tiers_current WHERE account_id = ?',
    )
    .all(account) as Array<Record<string, unknown>>;
  return rows
    .map((row) =>
      JSON.stringify([row.symbol, row.leverage, row.initial_margin, row.maintenance_margin, row.max_notional]),
    )
    .sort();
}

export function simCurrent(tiers: readonly SimTier[]): string[] {
  return tiers
    .map((tier) =>
      JSON.stringify([
        tier.symbol,
        normalizeLeverage(tier.leverage),
        tier.initial_margin,
        tier.maintenance_margin,
        tier.max_notional,
      ]),
    )
    .sort();
}

// ---- the network ----

/** A resolver for tests: every name is 127.0.0.1 until `failing` is set, then ENOTFOUND. No real DNS. */
export function switchableLookup(): { lookup: LookupFunction; failing: boolean; names: string[] } {
  const state = { failing: false, names: [] as string[], lookup: (() => undefined) as unknown as LookupFunction };
  const resolver = loopbackLookup(() => state.failing);
  state.names = resolver.names;
  state.lookup = resolver.lookup;
  return state;
}

export { makeTestTls, type TestTls } from './network.ts';

export interface RecordingProxy {
  url: string;
  /** Every text frame a client sent, as received (auth messages with their signatures included). */
  readonly clientFrames: string[];
  close(): Promise<void>;
}

const SENDABLE_CLOSE = (code: number) =>
  (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999);

/**
 * A WebSocket proxy on a loopback port in front of `target` (ws://): it forwards frames both ways
 * and records what clients send, so a test can know the exact signatures that went over the wire.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const clientFrames: string[] = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });
  await once(wss, 'listening');
  wss.on('connection', (client, request) => {
    const upstream = new WebSocket(new URL(request.url ?? '/', target), { maxPayload: 64 * 1024 * 1024 });
    const queued: Array<[RawData, boolean]> = [];
    const endBoth = (code?: number, reason?: Buffer) => {
      for (const socket of [client, upstream]) {
        if (socket.readyState === WebSocket.CLOSED) continue;
        if (code !== undefined && SENDABLE_CLOSE(code) && socket.readyState === WebSocket.OPEN) {
          socket.close(code, reason);
        } else socket.terminate();
      }
    };
    client.on('message', (data, isBinary) => {
      if (!isBinary) clientFrames.push(rawText(data));
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
      else queued.push([data, isBinary]);
    });
    upstream.on('open', () => {
      for (const [data, isBinary] of queued.splice(0)) upstream.send(data, { binary: isBinary });
    });
    upstream.on('message', (data, isBinary) => {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    });
    upstream.on('close', (code, reason) => endBoth(code, reason));
    client.on('close', (code, reason) => endBoth(code, reason));
    upstream.on('error', () => endBoth());
    client.on('error', () => endBoth());
    upstream.on('unexpected-response', () => endBoth());
  });
  const port = (wss.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    clientFrames,
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** What recorded auth messages carried: HMAC signatures, nonces, JWTs, and the auth messages themselves. */
export function credentialsSent(frames: readonly string[]): {
  signatures: string[];
  nonces: string[];
  jwts: string[];
  authFrames: string[];
} {
  const signatures: string[] = [];
  const nonces: string[] = [];
  const jwts: string[] = [];
  const authFrames: string[] = [];
  for (const frame of frames) {
    try {
      const message = JSON.parse(frame) as {
        type?: string;
        params?: { hmac?: { signature?: unknown; nonce?: unknown }; jwt?: unknown };
      };
      if (message.type !== 'auth') continue;
      authFrames.push(frame);
      if (typeof message.params?.hmac?.signature === 'string') signatures.push(message.params.hmac.signature);
      if (typeof message.params?.hmac?.nonce === 'string') nonces.push(message.params.hmac.nonce);
      if (typeof message.params?.jwt === 'string') jwts.push(message.params.jwt);
    } catch {
      /* not JSON: not an auth message */
    }
  }
  return { signatures, nonces, jwts, authFrames };
}

// ---- child processes ----

export interface CliChild {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  /**
   * Resolves once stderr (the log) holds `text`; rejects after `timeoutMs`, a guard against a hang
   * only: a child process on a loaded machine can take many seconds to start.
   */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
}

/** Runs `node src/cli.ts ...args` with `env` added to this process's environment. */
export function spawnCli(args: string[], env: Record<string, string>, options: { shell?: string } = {}): CliChild {
  const child =
    options.shell === undefined
      ? spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('bash', ['-c', `${options.shell}; exec "$0" "$@"`, process.execPath, CLI, ...args], {
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    for (const waiter of waiters.splice(0)) waiter();
  });
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? String(signal)) as number | string);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(text, timeoutMs = 60_000) {
      const seen = () => (typeof text === 'string' ? err.includes(text) : text.test(err));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${String(text)} in:\n${err.slice(-2000)}`)),
          timeoutMs,
        );
        const check = () => {
          if (seen()) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        void exited.then(() => {
          if (!seen()) {
            clearTimeout(timer);
            reject(new Error(`the process exited before logging ${String(text)}:\n${err.slice(-2000)}`));
          }
        });
        check();
      });
    },
  };
}

// ---- secrets ----

/** A secret in every form it could leak in: raw, JSON-escaped, base64, base64url and hex. */
export function secretForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [
    ...new Set([
      secret,
      JSON.stringify(secret).slice(1, -1),
      bytes.toString('base64'),
      bytes.toString('base64url'),
      bytes.toString('hex'),
    ]),
  ];
}

/** For each haystack that holds a form of a secret, "<where>: <secret name> (<form>)". */
export function findLeaks(haystacks: Record<string, string | Buffer>, secrets: Record<string, string>): string[] {
  const leaks: string[] = [];
  for (const [where, content] of Object.entries(haystacks)) {
    const buffer = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
    for (const [name, secret] of Object.entries(secrets)) {
      for (const form of secretForms(secret)) {
        if (buffer.includes(Buffer.from(form, 'utf8'))) {
          leaks.push(`${where}: ${name} (${form === secret ? 'raw' : form})`);
        }
      }
    }
  }
  return leaks;
}

/** The database file and its companions (-wal, -shm, .lock) that exist, read as bytes. */
export function databaseFiles(dbPath: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const path of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, `${dbPath}.lock`, `${dbPath}.lock-journal`]) {
    if (existsSync(path)) files[path] = readFileSync(path);
  }
  return files;
}
