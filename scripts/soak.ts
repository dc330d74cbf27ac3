/**
 * Soak run (issue 5; not part of `npm test`): the daemon as a child process (`tierwatch run`, one
 * sweep a second) against a simulator in this process whose tiers keep changing and which injects
 * seeded random faults, for a bounded time on loopback only. Then a report: runs ok/failed by code,
 * the net changes between consecutive successful sweeps as the simulator logged them versus the
 * changes tierwatch recorded (they must be equal), integrity, and the daemon's RSS and open file
 * descriptors at start and end.
 *
 *   npm run soak -- --minutes 10 [--seed 42] [--report /tmp/soak-report.md]
 *
 * Tier changes are applied only while no connection is open, so every sweep reads one consistent
 * state (paging is not a snapshot: an edit between two pages of one sweep would be "torn", which is
 * the exchange's nature, not a tierwatch bug). List shifts injected as faults do happen mid-sweep,
 * on purpose: the pager must notice them.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import {
  DEMO_PUBLIC_KEY,
  DEMO_SECRET_KEY,
  startChangeScript,
  startSimulator,
  type Fault,
  type SimChange,
  type SimTier,
} from '../src/sim/index.ts';
import { seededRandom, randomInt } from '../src/sim/random.ts';
import { openDatabase } from '../src/store/db.ts';
import { normalizeLeverage } from '../src/history/tier.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    report: { type: 'string' },
    'keep-dir': { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0 && minutes <= 24 * 60)) {
  throw new Error(`Expected --minutes to be a number from 0 to 1440, got ${values.minutes}`);
}
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const random = seededRandom(seed);
console.log(`soak: ${minutes} minute(s), seed ${seed} (--seed ${seed} reproduces the fault and change sequence)`);

// ---- the daemon's process, seen from outside ----

function rssKiB(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

function openFds(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

// ---- what the history must hold ----

function keyOf(symbol: string, leverage: string | number): string {
  return `${symbol} ${normalizeLeverage(leverage)}`;
}

/** The simulator's state replayed from its change log, advanced to any instant in order. */
class StateReplay {
  readonly #state = new Map<string, SimTier>();
  readonly #log: readonly SimChange[];
  #next = 0;
  constructor(initial: readonly SimTier[], log: readonly SimChange[]) {
    for (const tier of initial) this.#state.set(keyOf(tier.symbol, tier.leverage), { ...tier });
    this.#log = log;
  }
  /** Applies every logged change made at or before `atMs`; returns a copy of the state. */
  advanceTo(atMs: number): Map<string, SimTier> {
    while (this.#next < this.#log.length && this.#log[this.#next]!.at <= atMs) {
      const change = this.#log[this.#next++]!;
      if (change.account !== 'primary') continue;
      const key = keyOf(change.symbol, change.leverage);
      if (change.after === null) this.#state.delete(key);
      else this.#state.set(key, { ...change.after });
    }
    return new Map(this.#state);
  }
}

function netChanges(before: Map<string, SimTier>, after: Map<string, SimTier>): string[] {
  const lines: string[] = [];
  for (const [key, tier] of after) {
    const old = before.get(key);
    if (old === undefined) lines.push(`added ${key}`);
    else if (
      !Object.is(old.initial_margin, tier.initial_margin) ||
      !Object.is(old.maintenance_margin, tier.maintenance_margin) ||
      !Object.is(old.max_notional, tier.max_notional)
    ) {
      lines.push(`changed ${key}`);
    }
  }
  for (const key of before.keys()) if (!after.has(key)) lines.push(`removed ${key}`);
  return lines.sort();
}

// ---- the run ----

const FAULTS: Array<() => Fault> = [
  () => ({ kind: 'drop_at_page', page: 1 + randomInt(random, 3) }),
  () => ({ kind: 'drop_before_page', page: 1 + randomInt(random, 3) }),
  () => ({ kind: 'never_answer_page', page: 1 + randomInt(random, 3) }),
  () => ({ kind: 'never_answer_auth' }),
  () => ({ kind: 'reject_auth' }),
  () => ({ kind: 'reject_auth', mode: 'err_frame' }),
  () => ({ kind: 'error_reply', code: 'RateLimited', retryAfterMs: 50 + randomInt(random, 200) }),
  () => ({ kind: 'error_reply', code: 'ServerError' }),
  () => ({ kind: 'error_reply', code: 'InvalidParameter' }),
  () => ({
    kind: 'bad_frame',
    page: 1 + randomInt(random, 2),
    frame: (['non_json', 'wrong_shape', 'binary', 'unexpected_key'] as const)[randomInt(random, 4)]!,
  }),
  () => ({
    kind: 'malformed_row',
    page: 1 + randomInt(random, 2),
    row: { symbol: 'BAD-USD', leverage: '2', initial_margin: 'NaN', maintenance_margin: 0.1, max_notional: 1 },
  }),
  () => ({ kind: 'shift_insert', afterPage: 1 }),
  () => ({ kind: 'shift_delete', afterPage: 1 }),
  () => ({ kind: 'delay_page', page: 1, ms: 100 + randomInt(random, 400) }),
  () => ({ kind: 'empty_list' }),
  () => ({ kind: 'infinite_list' }),
];

const dir = mkdtempSync(join(tmpdir(), 'tierwatch-soak-'));
const dbPath = join(dir, 'soak.db');
const sim = await startSimulator({
  host: '127.0.0.1',
  port: 0,
  maxPageSize: 25,
  pingIntervalMs: 2000,
  authDeadlineMs: 5000,
});
const initial = sim.tiers();
const script = startChangeScript(sim, { everyMs: 2 ** 30, seed }); // stepped by hand below
const logFile = join(dir, 'daemon.log');
const log = createWriteStream(logFile);
const daemon = spawn(process.execPath, [CLI, 'run'], {
  env: {
    ...process.env,
    QFEX_WS_URL: sim.url,
    QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY,
    QFEX_SECRET_KEY: DEMO_SECRET_KEY,
    TIERWATCH_DB: dbPath,
    TIERWATCH_SCHEDULE: '* * * * * *',
    TIERWATCH_CONNECT_TIMEOUT: '1s',
    TIERWATCH_AUTH_TIMEOUT: '1s',
    TIERWATCH_REQUEST_TIMEOUT: '1s',
    TIERWATCH_IDLE_TIMEOUT: '3s',
    TIERWATCH_BACKOFF_BASE: '20ms',
    TIERWATCH_BACKOFF_MAX: '200ms',
    TIERWATCH_MAX_PAGES: '200',
    LOG_LEVEL: 'info',
  },
  stdio: ['ignore', 'ignore', 'pipe'],
});
daemon.stderr.pipe(log);
const exited = new Promise<number | string>((resolve) =>
  daemon.once('exit', (code, signal) => resolve(code ?? String(signal))),
);
const pid = daemon.pid!;

let lastBusyAt = Date.now();
let steps = 0;
const injected: Record<string, number> = {};
const startedAt = Date.now();
const endAt = startedAt + minutes * 60_000;
let nextStepAt = startedAt + 1500;
let nextFaultAt = startedAt + 5000;
let rssStart: number | null = null;
let fdsStart: number | null = null;
let rssPeak = 0;
let lastProgress = startedAt;

while (Date.now() < endAt) {
  await delay(10);
  const now = Date.now();
  if (sim.stats.openConnections > 0) lastBusyAt = now;
  if (rssStart === null && now - startedAt > 5000) {
    rssStart = rssKiB(pid);
    fdsStart = openFds(pid);
  }
  const rss = rssKiB(pid);
  if (rss !== null && rss > rssPeak) rssPeak = rss;
  // A change only while no connection is open (and none closed in the last 50 ms).
  if (now >= nextStepAt && now - lastBusyAt > 50 && sim.stats.openConnections === 0) {
    script.step();
    steps++;
    nextStepAt = now + 500 + randomInt(random, 3000);
  }
  if (now >= nextFaultAt) {
    const fault = FAULTS[randomInt(random, FAULTS.length)]!();
    sim.inject(fault);
    injected[fault.kind] = (injected[fault.kind] ?? 0) + 1;
    nextFaultAt = now + 2000 + randomInt(random, 6000);
  }
  if (now - lastProgress >= 60_000) {
    lastProgress = now;
    console.log(
      `soak: ${Math.round((now - startedAt) / 60_000)} min, ${steps} change steps, RSS ${rss} KiB, fds ${openFds(pid)}`,
    );
  }
}

// Wind down: no new faults or changes; let pending faults fire and a clean sweep happen.
sim.clearFaults();
await delay(3000);
const rssEnd = rssKiB(pid);
const fdsEnd = openFds(pid);
daemon.kill('SIGTERM');
const exitCode = await exited;
script.stop();
await new Promise((resolve) => log.end(resolve));

// ---- the verdict ----

const db = openDatabase(dbPath, { readonly: true });
const runs = db.sqlite
  .prepare('SELECT run_id, status, error_code, observed_at FROM runs ORDER BY run_id')
  .all() as Array<{
  run_id: number;
  status: string;
  error_code: string | null;
  observed_at: string | null;
}>;
const byOutcome: Record<string, number> = {};
for (const run of runs) {
  const key = run.status === 'ok' ? 'ok' : `${run.status}${run.error_code ? ` ${run.error_code}` : ''}`;
  byOutcome[key] = (byOutcome[key] ?? 0) + 1;
}
const okRuns = runs.filter((run) => run.status === 'ok').sort((a, b) => (a.observed_at! < b.observed_at! ? -1 : 1));
const changesOf = db.sqlite.prepare('SELECT change, symbol, leverage FROM tier_changes WHERE run_id = ?');
const replay = new StateReplay(initial, sim.changeLog);
let previous = new Map<string, SimTier>();
let expectedTotal = 0;
let recordedTotal = 0;
const mismatches: string[] = [];
for (const run of okRuns) {
  const state = replay.advanceTo(Date.parse(run.observed_at!));
  const expected = netChanges(previous, state);
  const recorded = (changesOf.all(run.run_id) as Array<{ change: string; symbol: string; leverage: string }>)
    .map((row) => `${row.change} ${row.symbol} ${row.leverage}`)
    .sort();
  expectedTotal += expected.length;
  recordedTotal += recorded.length;
  if (JSON.stringify(expected) !== JSON.stringify(recorded)) {
    mismatches.push(
      `run ${run.run_id}: expected ${expected.length} (${expected.slice(0, 3).join(', ')}…), recorded ${recorded.length} (${recorded.slice(0, 3).join(', ')}…)`,
    );
  }
  previous = state;
}
const integrity = (db.sqlite.pragma('integrity_check') as Array<{ integrity_check: string }>)
  .map((row) => row.integrity_check)
  .join('; ');
const current = (
  db.sqlite.prepare("SELECT symbol, leverage FROM tiers_current WHERE account_id = 'primary'").all() as Array<{
    symbol: string;
    leverage: string;
  }>
)
  .map((row) => `${row.symbol} ${row.leverage}`)
  .sort();
const finalMatches = JSON.stringify(current) === JSON.stringify([...previous.keys()].sort());
db.close();

const kib = (value: number | null) => (value === null ? 'n/a' : `${(value / 1024).toFixed(1)} MiB`);
const verdict = mismatches.length === 0 && integrity === 'ok' && finalMatches && exitCode === 0 ? 'PASS' : 'FAIL';
const report = [
  `### Soak run (${new Date(startedAt).toISOString().slice(0, 16)}Z): ${verdict}`,
  '',
  `\`npm run soak -- --minutes ${minutes} --seed ${seed}\`: the daemon (\`tierwatch run\`, one sweep a second) against the simulator on loopback,`,
  `with ${steps} tier-change steps (${sim.changeLog.length} logged tier changes) and ${Object.values(injected).reduce((a, b) => a + b, 0)} injected faults.`,
  '',
  '| measure | value |',
  '| --- | --- |',
  `| runs | ${runs.length} |`,
  ...Object.entries(byOutcome)
    .sort((a, b) => b[1] - a[1])
    .map(([outcome, count]) => `| runs ${outcome} | ${count} |`),
  `| successful sweeps whose recorded changes equal the simulator's net changes | ${okRuns.length - mismatches.length} / ${okRuns.length} |`,
  `| net changes logged by the simulator between successful sweeps | ${expectedTotal} |`,
  `| changes recorded by tierwatch | ${recordedTotal} |`,
  `| final tiers_current equals the simulator's state at the last successful sweep | ${finalMatches ? 'yes' : 'NO'} |`,
  `| PRAGMA integrity_check | ${integrity} |`,
  `| daemon RSS at start (5 s) → end (peak) | ${kib(rssStart)} → ${kib(rssEnd)} (${kib(rssPeak)}) |`,
  `| daemon open file descriptors at start → end | ${fdsStart ?? 'n/a'} → ${fdsEnd ?? 'n/a'} |`,
  `| daemon exit code after SIGTERM | ${exitCode} |`,
  '',
  `Faults injected: ${Object.entries(injected)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, count]) => `${kind} ×${count}`)
    .join(', ')}.`,
  ...(mismatches.length > 0 ? ['', 'Mismatches:', ...mismatches.slice(0, 20).map((line) => `- ${line}`)] : []),
  '',
].join('\n');

console.log(report);
if (values.report !== undefined) writeFileSync(values.report, report);
await sim.close();
if (values['keep-dir']) console.log(`soak: database and daemon log kept in ${dir}`);
else rmSync(dir, { recursive: true, force: true });
process.exitCode = verdict === 'PASS' ? 0 : 1;
