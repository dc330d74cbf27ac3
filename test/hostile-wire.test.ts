/**
 * Issue 10, the wire: `tierwatch collect` (in process, through the CLI) against a simulator that
 * behaves as real servers do and as hostile ones can — frames that answer nothing, errors about
 * other requests, a stale answer, auth answered RateLimited, deep nesting, drips, pages larger than
 * asked, endless big pages and oversized frames. A tolerated fault ends in a run that stores exactly
 * the simulator's tiers; a bounded one in a failed run with its own code, the history untouched,
 * and a next run that records the true changes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sweepAccount } from '../src/collect/sweep.ts';
import { SweepMetrics } from '../src/collect/metrics.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { openDatabase } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, startSimulator, type Fault, type Simulator } from '../src/sim/index.ts';
import { FAST_ENV, LogCapture, runCliCaptured, type CapturedRun } from './helpers/harness.ts';
import { currentTiers, historyDumpOf, simCurrent } from './helpers/faults.ts';

let sim: Simulator;
let dir = '';
let env: Record<string, string> = {};
let changes = 0;

before(async () => {
  // A server cap of 7 rows: every sweep takes several pages, so "page 2" and "page 3" exist.
  sim = await startSimulator({ host: '127.0.0.1', port: 0, maxPageSize: 7 });
  dir = mkdtempSync(join(tmpdir(), 'tierwatch-hostile-'));
  env = {
    ...FAST_ENV,
    QFEX_WS_URL: sim.url,
    QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY,
    QFEX_SECRET_KEY: DEMO_SECRET_KEY,
    TIERWATCH_DB: join(dir, 'h.db'),
  };
  const first = await runCliCaptured(['collect'], { env });
  assert.equal(first.code, 0, first.stderr);
});

after(async () => {
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface LedgerRow {
  status: string;
  error_code: string | null;
  error_message: string | null;
  pages: number;
}

function lastRun(): LedgerRow {
  const db = openDatabase(env.TIERWATCH_DB!, { readonly: true });
  try {
    return db.sqlite
      .prepare('SELECT status, error_code, error_message, pages FROM runs ORDER BY run_id DESC LIMIT 1')
      .get() as LedgerRow;
  } finally {
    db.close();
  }
}

function storedTiers(): string[] {
  const db = openDatabase(env.TIERWATCH_DB!, { readonly: true });
  try {
    return currentTiers(db.sqlite);
  } finally {
    db.close();
  }
}

/** A small true change, so that "stores exactly the simulator's tiers" is never vacuous. */
function trueChange(): void {
  const tiers = sim.tiers();
  const target = tiers[(++changes * 5) % tiers.length]!;
  sim.editTier('primary', target.symbol, target.leverage, { max_notional: target.max_notional + 500 });
}

/** One `tierwatch collect` with `faults` injected and `extra` settings; faults are cleared after. */
async function collect(faults: Fault[], extra: Record<string, string> = {}): Promise<CapturedRun> {
  trueChange();
  for (const fault of faults) sim.inject(fault);
  try {
    return await runCliCaptured(['collect'], { env: { ...env, ...extra } });
  } finally {
    sim.clearFaults();
  }
}

function assertStoredExactly(run: CapturedRun, label: string): void {
  assert.equal(run.code, 0, `${label}: ${run.logs.text().slice(-1500)}`);
  assert.equal(lastRun().status, 'ok');
  assert.deepEqual(storedTiers(), simCurrent(sim.tiers()), `${label}: the history holds the simulator's tiers`);
}

/** The failed run's code, the history untouched, and a next run that catches up. */
async function assertFailsCleanly(faults: Fault[], extra: Record<string, string>, code: string): Promise<CapturedRun> {
  const history = historyDumpOf(env.TIERWATCH_DB!);
  const run = await collect(faults, extra);
  assert.equal(
    run.code,
    1,
    run.logs.raw
      .filter((line) => !line.includes(`"leverage page"`))
      .join('\n')
      .slice(-3000),
  );
  const row = lastRun();
  assert.equal(row.status, 'failed');
  assert.equal(row.error_code, code, row.error_message ?? '');
  assert.deepEqual(historyDumpOf(env.TIERWATCH_DB!), history, 'a failed run leaves the history as it was');
  assertStoredExactly(await collect([]), `after ${code}`);
  return run;
}

function ignoredLines(run: CapturedRun, type: string): Array<Record<string, unknown>> {
  return run.logs.lines.filter((line) => line.frame_type === type);
}

test('unsolicited notices, heartbeats sent as messages, new message types and subscription pushes are skipped, and logged once per type', async () => {
  // The earliest pending fault of a kind fires first: the persistent heartbeat goes last.
  const run = await collect([
    { kind: 'unknown_push', page: 2, push: 'notice' },
    { kind: 'unknown_push', page: 3, push: 'new_type' },
    { kind: 'unknown_push', page: 4, push: 'subscription' },
    { kind: 'unknown_push', page: 5, push: 'authenticated' },
    { kind: 'unknown_push', when: 'after_auth_answer', push: 'notice' },
    { kind: 'unknown_push', push: 'heartbeat', persistent: true },
  ]);
  assertStoredExactly(run, 'pushes');
  assert.equal(ignoredLines(run, 'heartbeat').length, 1, 'a heartbeat on every page is logged once');
  assert.equal(ignoredLines(run, 'notice').length, 1, 'two notices on one connection are logged once');
  for (const type of ['unknown', 'subscribed', 'authenticated']) assert.equal(ignoredLines(run, type).length, 1, type);
});

test('errors naming another request (add_order), while auth or a page is awaited, are skipped', async () => {
  const run = await collect([
    { kind: 'unsolicited_error', when: 'before_auth_answer', code: 'InvalidOrder', about: 'add_order' },
    { kind: 'unsolicited_error', page: 2, code: 'PermissionDenied', about: 'add_order' },
    { kind: 'unsolicited_error', when: 'after_auth_answer', code: 'ServerError', about: 'add_order' },
  ]);
  assertStoredExactly(run, 'errors about other requests');
  assert.equal(ignoredLines(run, 'err').length, 1);
});

test('an unsolicited ServerError with no echo right after auth is skipped or retried, never fatal', async () => {
  assertStoredExactly(
    await collect([{ kind: 'unsolicited_error', when: 'after_auth_answer', code: 'ServerError', about: null }]),
    'unsolicited ServerError',
  );
});

test('a stale page answer: the pager notices, and continues on a fresh connection', async () => {
  const connections = sim.stats.connections;
  const run = await collect([{ kind: 'stale_page', page: 3 }]);
  assertStoredExactly(run, 'stale page');
  assert.equal(sim.stats.connections - connections, 2, 'one fresh connection after the stale answer');
  assert.ok(run.logs.lines.some((line) => line.msg === 'continuing on a fresh connection'));
});

test('RateLimited or ServerError in answer to auth is retried (fresh connection), not QFEX_AUTH_REJECTED', async () => {
  for (const code of ['RateLimited', 'ServerError']) {
    const connections = sim.stats.connections;
    const run = await collect([{ kind: 'reject_auth', mode: 'err_frame', code }]);
    assertStoredExactly(run, `${code} to auth`);
    assert.equal(sim.stats.connections - connections, 2, code);
  }
  // Still bounded: always refused is QFEX_RATE_LIMITED after TIERWATCH_PAGE_RETRIES.
  await assertFailsCleanly(
    [{ kind: 'reject_auth', mode: 'err_frame', code: 'RateLimited', persistent: true }],
    { TIERWATCH_PAGE_RETRIES: '2' },
    'QFEX_RATE_LIMITED',
  );
});

test('a page nested 200,000 levels deep is QFEX_PROTOCOL, not a stack overflow', async () => {
  const run = await assertFailsCleanly([{ kind: 'bad_frame', page: 2, frame: 'deep' }], {}, 'QFEX_PROTOCOL');
  assert.match(lastRunMessage(run), /nested deeper than 64 levels/);
});

function lastRunMessage(run: CapturedRun): string {
  const line = run.logs.lines.find(
    (entry) => entry.code === 'QFEX_PROTOCOL' && typeof entry.msg === 'string' && entry.msg.startsWith('sweep failed'),
  );
  return typeof line?.msg === 'string' ? line.msg : '';
}

test('a page larger than asked is kept, with one warning', async () => {
  // 7 asked (the server cap is 7 too), 30 sent.
  const run = await collect([{ kind: 'oversized_page', page: 2, rows: 30 }], { TIERWATCH_PAGE_SIZE: '7' });
  assertStoredExactly(run, 'oversized page');
  const warnings = run.logs.lines.filter((line) => String(line.msg).includes('more rows than the page size asked for'));
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.rows, 30);
});

test('a server that drips rows is stopped by TIERWATCH_SWEEP_TIMEOUT: SWEEP_TIMEOUT', async () => {
  // One row per page, 400 ms late: the drip alone would take (tiers × 400 ms) ≈ 25 s; the deadline ends it after 1 s.
  const history = historyDumpOf(env.TIERWATCH_DB!);
  const run = await collect([{ kind: 'drip', ms: 400 }], {
    TIERWATCH_SWEEP_TIMEOUT: '1s',
    TIERWATCH_REQUEST_TIMEOUT: '5s',
  });
  assert.equal(run.code, 1);
  // Stopped by the deadline, not by the end of the list: far fewer pages than the one-row pages a full drip needs.
  const stopped = lastRun();
  assert.ok(stopped.pages < 20, `the drip was stopped after ${stopped.pages} pages`);
  assert.equal(stopped.error_code, 'SWEEP_TIMEOUT');
  assert.deepEqual(historyDumpOf(env.TIERWATCH_DB!), history, 'a failed run leaves the history as it was');
  assert.ok(
    run.logs.lines.some((line) => line.code === 'SWEEP_TIMEOUT' && /TIERWATCH_SWEEP_TIMEOUT/.test(String(line.msg))),
  );
  assertStoredExactly(await collect([]), 'after SWEEP_TIMEOUT');
});

test('an endless list of big pages is stopped by TIERWATCH_MAX_TIERS: TIER_LIMIT_REACHED', async () => {
  const run = await assertFailsCleanly(
    [{ kind: 'endless_big_pages', rows: 5000 }],
    { TIERWATCH_MAX_TIERS: '12000' },
    'TIER_LIMIT_REACHED',
  );
  assert.ok(
    run.logs.lines.some((line) => line.code === 'TIER_LIMIT_REACHED' && /TIERWATCH_MAX_TIERS/.test(String(line.msg))),
  );
});

test('a frame above TIERWATCH_MAX_FRAME_BYTES is QFEX_FRAME_TOO_LARGE; a larger setting accepts it', async () => {
  await assertFailsCleanly(
    [{ kind: 'bad_frame', page: 2, frame: 'oversized', bytes: 300 * 1024 }],
    { TIERWATCH_MAX_FRAME_BYTES: '256KiB' },
    'QFEX_FRAME_TOO_LARGE',
  );
  // The same frame (the page plus padding) under a limit that fits it is just a page.
  assertStoredExactly(
    await collect([{ kind: 'bad_frame', page: 2, frame: 'oversized', bytes: 300 * 1024 }], {
      TIERWATCH_MAX_FRAME_BYTES: '1MiB',
    }),
    'frame within the limit',
  );
});

test('the bounds are settings that name themselves when invalid (exit 2)', async () => {
  for (const [variable, value] of [
    ['TIERWATCH_MAX_TIERS', '0'],
    ['TIERWATCH_MAX_FRAME_BYTES', '1'],
    ['TIERWATCH_MAX_FRAME_BYTES', 'lots'],
    ['TIERWATCH_SWEEP_TIMEOUT', '30d'],
    ['TIERWATCH_SWEEP_TIMEOUT', '0'],
    // Not below the default schedule's gap (every 5 minutes).
    ['TIERWATCH_SWEEP_TIMEOUT', '5m'],
  ] as const) {
    const run = await runCliCaptured(['collect'], { env: { ...env, [variable]: value } });
    assert.equal(run.code, 2, `${variable}=${value}`);
    assert.ok(run.stderr.includes(variable) && run.stderr.includes(JSON.stringify(value)), run.stderr);
  }
  const config = loadConfig({});
  assert.deepEqual([config.maxTiers, config.maxFrameBytes, config.sweepTimeoutMs], [200_000, 4 * 1024 * 1024, 120_000]);
});

test('skipped frames are counted in tierwatch_ignored_frames_total{type}', async () => {
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const db = openDatabase(env.TIERWATCH_DB!, { logger });
  try {
    trueChange();
    sim.inject({ kind: 'unknown_push', page: 2, push: 'new_type' });
    sim.inject({ kind: 'unknown_push', push: 'heartbeat', persistent: true });
    const result = await sweepAccount(loadConfig(env), 'primary', { store: new HistoryStore(db, { logger }), logger });
    sim.clearFaults();
    assert.equal(result.ok, true);
    const metrics = new SweepMetrics({ processMetrics: false });
    metrics.record(result);
    const text = await metrics.registry.metrics();
    const pages = result.ok ? result.pages : 0;
    assert.match(
      text,
      new RegExp(`tierwatch_ignored_frames_total\\{type="heartbeat"\\} ${pages - 1}\\b`),
      'on every page but the one that had the new type',
    );
    assert.match(text, /tierwatch_ignored_frames_total\{type="unknown"\} 1\b/);
  } finally {
    sim.clearFaults();
    db.close();
  }
});
