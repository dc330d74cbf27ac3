/**
 * `npm run bench`: how fast a sweep is and how little history costs, every figure beside a baseline
 * measured in the same run (issue 6). Prints a table and writes bench/results.json (top-level keys
 * machine, sweep, storage, queries, daemon; units in the names). A benchmark, not a test: it fails
 * only when an answer is wrong (wrong row count, a sweep that failed), never because a target was
 * missed — misses are findings, marked in the table and the JSON.
 *
 *   node bench/run.ts [--quick] [--only sweep,storage,queries,upgrade,daemon,endless,web,pg] [--markdown FILE]
 *
 * --quick uses fewer repeats (a smoke run); --markdown also writes the final table as markdown.
 * The sweep and daemon sections need the built CLI (`npm run build`) for their child processes.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { benchDaemon } from './daemon.ts';
import { benchEndless } from './endless.ts';
import { benchPg } from './pg.ts';
import { benchQueries } from './queries.ts';
import { checkTarget, round, type TargetCheck } from './stats.ts';
import { benchStorage } from './storage.ts';
import { benchUpgrade } from './upgrade.ts';
import { benchWeb } from './web.ts';
import type { SweepSizeResult } from './sweep-worker.ts';
import { render } from './report.ts';
import { BUILT_CLI, ROOT } from './paths.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SECTIONS = ['sweep', 'storage', 'queries', 'upgrade', 'daemon', 'endless', 'web', 'pg'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    markdown: { type: 'string' },
    out: { type: 'string', default: path.join(HERE, 'results.json') },
  },
});
const only = new Set((values.only?.split(',') ?? SECTIONS).map((name) => name.trim()) as Section[]);
for (const name of only) {
  if (!SECTIONS.includes(name)) {
    throw new Error(`--only: unknown section ${JSON.stringify(name)} (${SECTIONS.join(', ')})`);
  }
}
const quick = values.quick === true;

function machine(loadAtStart: number[]) {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const sqliteVersion = (new Database(':memory:').prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  return {
    nproc: os.availableParallelism(),
    cpu_model: model.trim(),
    memory_bytes: os.totalmem(),
    node_version: process.version,
    sqlite_version: sqliteVersion,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg_at_start: loadAtStart.map((value) => round(value, 2)),
    loadavg_at_end: [] as number[],
    started_at: new Date().toISOString(),
    duration_s: 0,
  };
}

/** Runs one universe size in its own process (bench/sweep-worker.ts) and returns its figures. */
function sweepSize(tiers: number, repeats: number): Promise<SweepSizeResult> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(HERE, 'sweep-worker.ts'), [String(tiers), String(repeats)], {
      execPath: process.execPath,
      stdio: 'inherit',
    });
    child.once('message', (message: { result?: SweepSizeResult; error?: string }) => {
      if (message.result !== undefined) resolve(message.result);
      else reject(new Error(`sweep benchmark of ${tiers} tiers failed: ${message.error}`));
    });
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`sweep benchmark of ${tiers} tiers exited with ${code}`));
    });
  });
}

async function benchSweeps() {
  const sizes = [1_000, 10_000, 100_000];
  const bySize: Record<string, SweepSizeResult> = {};
  for (const tiers of sizes) {
    const repeats = quick ? 3 : tiers >= 100_000 ? 5 : 9;
    progress(`sweep: ${tiers.toLocaleString('en')} tiers, ${repeats} repeats`);
    bySize[String(tiers)] = await sweepSize(tiers, repeats);
  }
  const big = bySize['100000']!;
  const mid = bySize['10000']!;
  const targets: Record<string, TargetCheck> = {
    steady_100k_unchanged: checkTarget({
      target: 'steady-state sweep of 100,000 tiers ≤ 0.5 s and ≤ 2× the floor (unchanged)',
      value: big.steady.unchanged.total_p50_ms!,
      unit: 'ms (p50)',
      baseline: big.floor.p50_ms,
      baselineName: 'floor: decode + JSON.parse of the pages + keyed comparison',
      limit: 500,
      ratioLimit: { max: 2 },
    }),
    steady_100k_changed_1pct: checkTarget({
      target: 'steady-state sweep of 100,000 tiers ≤ 0.5 s and ≤ 2× the floor (1% changed)',
      value: big.steady.changed_1pct.total_p50_ms!,
      unit: 'ms (p50)',
      baseline: big.floor.p50_ms,
      baselineName: 'floor: decode + JSON.parse of the pages + keyed comparison',
      limit: 500,
      ratioLimit: { max: 2 },
    }),
    steady_10k_unchanged: checkTarget({
      target: 'steady-state sweep of 10,000 tiers ≤ 100 ms (unchanged)',
      value: mid.steady.unchanged.total_p50_ms!,
      unit: 'ms (p50)',
      baseline: mid.floor.p50_ms,
      baselineName: 'floor: decode + JSON.parse of the pages + keyed comparison',
      limit: 100,
    }),
    steady_10k_changed_1pct: checkTarget({
      target: 'steady-state sweep of 10,000 tiers ≤ 100 ms (1% changed)',
      value: mid.steady.changed_1pct.total_p50_ms!,
      unit: 'ms (p50)',
      baseline: mid.floor.p50_ms,
      baselineName: 'floor: decode + JSON.parse of the pages + keyed comparison',
      limit: 100,
    }),
  };
  return { page_size: 1000, change_fraction: 0.01, by_tiers: bySize, targets };
}

function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** The child processes run the built CLI: say so when dist/ is older than the sources it came from. */
function warnIfStaleBuild(): void {
  const cli = BUILT_CLI;
  if (!fs.existsSync(cli)) {
    progress('dist/src/cli.js is missing: run `npm run build` first (the CLI figures will be skipped)');
    return;
  }
  const built = fs.statSync(cli).mtimeMs;
  const newest = fs
    .readdirSync(path.join(ROOT, 'src'), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .reduce((latest, entry) => Math.max(latest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs), 0);
  if (newest > built) {
    progress('warning: src/ is newer than dist/: run `npm run build` so the CLI figures measure the current code');
  }
}

const began = performance.now();
warnIfStaleBuild();
const results: Record<string, any> = { machine: machine(os.loadavg()) };
progress(`machine: ${results.machine.nproc} CPU, load ${results.machine.loadavg_at_start.join(' ')}`);
if (only.has('sweep')) results.sweep = await benchSweeps();
if (only.has('storage')) {
  progress('storage: 200 sweeps of 10,000 tiers, then 100 unchanged, and the full-copy baseline');
  results.storage = await benchStorage();
}
if (only.has('queries')) {
  progress('queries: building a year of 5-minute sweeps, then timing the queries');
  results.queries = await benchQueries({ runs: quick ? 10 : 30, cliRuns: quick ? 3 : 7 });
}
if (only.has('upgrade')) {
  progress('upgrade: the year written by 0.1.0, killed mid-upgrade, then upgraded in place; every answer compared');
  // A wrong answer after the upgrade is a finding to report, not a reason to lose the other figures.
  results.upgrade = await benchUpgrade().catch((error: Error) => ({ error: error.message }));
}
if (only.has('daemon')) {
  progress(
    'daemon: tierwatch run against 10,000 tiers (first start, a restart, a restart serving /metrics), reading its RSS between sweeps',
  );
  results.daemon = await benchDaemon({ sweeps: quick ? 3 : 5 });
}
if (only.has('endless')) {
  progress('endless: tierwatch collect against servers whose list never ends, reading its peak RSS');
  results.endless = await benchEndless();
}
if (only.has('web')) {
  progress('web: the year again, every page and API answer of tierwatch serve over HTTP, beside the CLI');
  results.web = await benchWeb({ runs: quick ? 5 : 15 });
}
if (only.has('pg')) {
  progress('pg: the same sweeps stored in SQLite and in a throwaway Postgres, side by side');
  results.pg = await benchPg({ quick, progress });
}
results.machine.loadavg_at_end = os.loadavg().map((value) => round(value, 2));
results.machine.duration_s = round((performance.now() - began) / 1000, 1);

fs.writeFileSync(values.out, `${JSON.stringify(results, null, 2)}\n`);
const { text, markdown } = render(results);
process.stdout.write(
  `${text}\n\nResults: ${path.relative(process.cwd(), values.out)} (${results.machine.duration_s} s)\n`,
);
if (values.markdown) fs.writeFileSync(values.markdown, `${markdown}\n`);
