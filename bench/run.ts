/**
 * `npm run bench`: how fast a sweep is and how little history costs, every figure beside a baseline
 * measured in the same run (issue 6). Prints a table and writes bench/results.json (top-level keys
 * machine, sweep, storage, queries, daemon; units in the names). A benchmark, not a test: it fails
 * only when an answer is wrong (wrong row count, a sweep that failed), never because a target was
 * missed — misses are findings, marked in the table and the JSON.
 *
 *   node bench/run.ts [--quick] [--only sweep,storage,queries,upgrade,daemon,endless,pg] [--markdown FILE]
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
import { benchPg, type PgSizeResult } from './pg.ts';
import { benchQueries } from './queries.ts';
import { checkTarget, round, type TargetCheck } from './stats.ts';
import { benchStorage } from './storage.ts';
import { benchUpgrade } from './upgrade.ts';
import type { SweepSizeResult } from './sweep-worker.ts';
import { BUILT_CLI, ROOT } from './paths.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SECTIONS = ['sweep', 'storage', 'queries', 'upgrade', 'daemon', 'endless', 'pg'] as const;
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
for (const name of only) if (!SECTIONS.includes(name)) throw new Error(`--only: unknown section ${JSON.stringify(name)} (${SECTIONS.join(', ')})`);
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
    const child = fork(path.join(HERE, 'sweep-worker.ts'), [String(tiers), String(repeats)], { execPath: process.execPath, stdio: 'inherit' });
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
      target: 'steady-state sweep of 100,000 tiers ≤ 0.5 s and ≤ 2× the floor (unchanged)', value: big.steady.unchanged.total_p50_ms!,
      unit: 'ms (p50)', baseline: big.floor.p50_ms, baselineName: 'floor: decode + JSON.parse of the pages + keyed comparison', limit: 500, ratioLimit: { max: 2 },
    }),
    steady_100k_changed_1pct: checkTarget({
      target: 'steady-state sweep of 100,000 tiers ≤ 0.5 s and ≤ 2× the floor (1% changed)', value: big.steady.changed_1pct.total_p50_ms!,
      unit: 'ms (p50)', baseline: big.floor.p50_ms, baselineName: 'floor: decode + JSON.parse of the pages + keyed comparison', limit: 500, ratioLimit: { max: 2 },
    }),
    steady_10k_unchanged: checkTarget({
      target: 'steady-state sweep of 10,000 tiers ≤ 100 ms (unchanged)', value: mid.steady.unchanged.total_p50_ms!,
      unit: 'ms (p50)', baseline: mid.floor.p50_ms, baselineName: 'floor: decode + JSON.parse of the pages + keyed comparison', limit: 100,
    }),
    steady_10k_changed_1pct: checkTarget({
      target: 'steady-state sweep of 10,000 tiers ≤ 100 ms (1% changed)', value: mid.steady.changed_1pct.total_p50_ms!,
      unit: 'ms (p50)', baseline: mid.floor.p50_ms, baselineName: 'floor: decode + JSON.parse of the pages + keyed comparison', limit: 100,
    }),
  };
  return { page_size: 1000, change_fraction: 0.01, by_tiers: bySize, targets };
}

function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

const mib = (bytes: number | null | undefined) => (bytes == null || !Number.isFinite(bytes) ? '–' : `${round(bytes / 1048576, 1)} MiB`);
const ms = (value: number | null | undefined) => (value == null ? '–' : value < 1 ? `${round(value, 3)} ms` : value < 100 ? `${round(value, 1)} ms` : `${Math.round(value)} ms`);
const ratio = (value: number) => `${round(value, value < 10 ? 2 : 1)}×`;

type Row = [string, string, string, string, string];

function targetRows(checks: Record<string, TargetCheck>): Row[] {
  return Object.values(checks).map((check) => [
    check.target,
    `${check.unit.startsWith('ms') ? ms(check.value) : check.unit === 'bytes' ? `${Math.round(check.value).toLocaleString('en')} B` : `${check.value} ${check.unit}`}`,
    `${check.unit.startsWith('ms') ? ms(check.baseline) : check.unit === 'bytes' ? `${Math.round(check.baseline).toLocaleString('en')} B` : `${check.baseline} ${check.unit}`} (${check.baseline_name})`,
    ratio(check.ratio_to_baseline),
    check.met ? 'met' : 'MISSED',
  ]);
}

function markdownTable(header: string[], rows: string[][]): string {
  const escape = (cell: string) => cell.replace(/\|/g, '\\|');
  return [
    `| ${header.map(escape).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n');
}

function render(results: Record<string, any>): { text: string; markdown: string } {
  const sections: Array<{ title: string; header: string[]; rows: string[][] }> = [];
  const m = results.machine;
  const machineLine = `${m.nproc} CPU (${m.cpu_model}), ${mib(m.memory_bytes)} RAM, Node ${m.node_version}, SQLite ${m.sqlite_version}; load average ${m.loadavg_at_start.join(' / ')} at start, ${m.loadavg_at_end.join(' / ')} at end (1/5/15 min)`;

  if (results.sweep) {
    const rows: string[][] = [];
    for (const [tiers, size] of Object.entries(results.sweep.by_tiers as Record<string, SweepSizeResult>)) {
      const line = (mode: string, s: Record<string, number>, extra = '') => [
        Number(tiers).toLocaleString('en'), mode, ms(s.total_p50_ms), ms(s.paging_p50_ms), ms(s.validation_p50_ms), ms(s.diff_p50_ms),
        ms(s.commit_p50_ms) + extra, `${Math.round(s.tiers_per_s! / 1000)}k`, ms(size.floor.p50_ms), ratio(s.total_p50_ms! / size.floor.p50_ms),
      ];
      // The steady total is sweepAccount's durationMs, which ends before the WAL checkpoint that
      // follows the sweep: shown beside the commit so no cost is hidden. One-shot totals include it.
      const after = (s: Record<string, number>) => `checkpoint after ${ms(s.checkpoint_after_p50_ms)}`;
      const oneShot = (s: Record<string, number>) => ` (+open ${ms(s.open_p50_ms)}, close ${ms(s.close_p50_ms)}, ${after(s)})`;
      rows.push(line('steady, unchanged', size.steady.unchanged, ` (+${after(size.steady.unchanged)})`));
      rows.push(line('steady, 1% changed', size.steady.changed_1pct, ` (+${after(size.steady.changed_1pct)})`));
      rows.push(line('one-shot, unchanged', size.one_shot.unchanged, oneShot(size.one_shot.unchanged)));
      rows.push(line('one-shot, 1% changed', size.one_shot.changed_1pct, oneShot(size.one_shot.changed_1pct)));
      if (size.cli_collect) {
        rows.push([Number(tiers).toLocaleString('en'), '`tierwatch collect` process', ms(size.cli_collect.wall_p50_ms), '', '', '', '', '', '', `peak RSS ${mib(size.cli_collect.peak_rss_bytes)}`]);
      }
      rows.push([Number(tiers).toLocaleString('en'), 'floor without UTF-8 decoding', ms(size.floor.without_decode_p50_ms), '', '', '', '', '', '', '']);
      rows.push([Number(tiers).toLocaleString('en'), 'sweep process peak RSS', mib(size.peak_rss_bytes), '', '', '', '', '', '', '']);
    }
    sections.push({
      title: 'Sweeps over loopback (simulator in its own process, pre-serialised pages, page size 1000; medians)',
      header: ['tiers', 'mode', 'total', 'paging', 'validation', 'diff', 'commit (incl. diff)', 'tiers/s', 'floor', 'total/floor'],
      rows,
    });
  }
  if (results.storage) {
    const s = results.storage;
    sections.push({
      title: `Storage (${s.sweeps} sweeps of ${s.tiers.toLocaleString('en')} tiers, ${s.changed_tiers_per_sweep} tiers changed per sweep; sizes after a WAL checkpoint)`,
      header: ['figure', 'tierwatch', 'naive full copy', 'ratio'],
      rows: [
        ['database after the first sweep', `${mib(s.history_bytes_after_first_sweep)}`, mib(s.naive_bytes_per_sweep), ratio(s.history_bytes_after_first_sweep / s.naive_bytes_per_sweep)],
        ['database after 200 sweeps', mib(s.history_bytes_after_200_sweeps), mib(s.naive_full_copy_bytes), `${ratio(s.naive_full_copy_bytes / s.history_bytes_after_200_sweeps)} smaller`],
        ['bytes added per sweep with 10 changes', `${s.history_bytes_per_changed_sweep.toLocaleString('en')} B`, `${s.naive_bytes_per_sweep.toLocaleString('en')} B`, ratio(s.naive_bytes_per_sweep / s.history_bytes_per_changed_sweep)],
        ['bytes added per unchanged sweep (mean of 100)', `${s.bytes_per_unchanged_sweep} B`, `${s.naive_bytes_per_sweep.toLocaleString('en')} B`, ratio(s.naive_bytes_per_sweep / s.bytes_per_unchanged_sweep)],
        ['sweeps until 100× smaller (extrapolated)', s.sweeps_until_100x_smaller === null ? 'never' : `${s.sweeps_until_100x_smaller} (${round((s.sweeps_until_100x_smaller * 5) / 1440, 1)} days at 5 min)`, '', ''],
      ],
    });
  }
  if (results.queries) {
    const q = results.queries;
    const line = (name: string, t: any) => [name, String(t.rows), ms(t.p50_ms), ms(t.p95_ms), ms(t.floor_p50_ms), ratio(t.ratio_to_floor)];
    const rows = [
      line('snapshot --at T --symbol S (one symbol)', q.snapshot_one_symbol),
      line('snapshot --at T (whole exchange)', q.snapshot_everything),
      line('diff over one week', q.diff_week),
      line('diff over the year', q.diff_year),
      line('changes --since 7d', q.changes_since_7d),
      line('history SYMBOL', q.history_symbol),
    ];
    if (q.cli) {
      rows.push(['CLI start-up: node -e 0 (baseline)', '', ms(q.cli.node_baseline.p50_ms), '', '', '']);
      rows.push(['CLI start-up: tierwatch --version', '', ms(q.cli.version.p50_ms), '', ms(q.cli.node_baseline.p50_ms), ratio(q.cli.version.ratio_to_node)]);
      rows.push(['CLI: tierwatch snapshot --symbol S (whole process)', String(q.snapshot_one_symbol.rows), ms(q.cli.snapshot_one_symbol.p50_ms), '', ms(q.cli.node_baseline.p50_ms), ratio(q.cli.snapshot_one_symbol.ratio_to_node)]);
    }
    sections.push({
      title: `Queries on one year of 5-minute sweeps (${q.history.runs.toLocaleString('en')} runs, ${q.history.tier_versions.toLocaleString('en')} versions, ${q.history.tier_changes.toLocaleString('en')} changes, ${mib(q.history.bytes)}; built in ${q.history.build_s} s), in process`,
      header: ['query', 'rows', 'p50', 'p95', 'floor (same rows by primary key)', 'p50/floor'],
      rows,
    });
  }
  if (results.upgrade?.error) {
    sections.push({ title: 'Upgrade in place from 0.1.0', header: ['figure', 'value'], rows: [['FAILED', results.upgrade.error]] });
  } else if (results.upgrade) {
    const u = results.upgrade;
    sections.push({
      title: `Upgrade in place from ${u.from_version}: the year written by 0.1.0's own code (${u.history.tier_versions.toLocaleString('en')} versions, ${u.history.tier_changes.toLocaleString('en')} changes)`,
      header: ['figure', 'value'],
      rows: [
        ['answers compared (changes, snapshot --at, diff, history, runs)', `${u.questions_compared} questions, ${u.rows_compared.toLocaleString('en')} rows: ${u.answers_identical ? 'all identical' : `identical but ${u.differing_questions.join(', ')}`}`],
        ['the whole feed, row by row', `${u.feed_rows_compared.toLocaleString('en')} rows, ${u.feed_rows_differing} differing${u.feed_rows_differing_why ? `: ${u.feed_rows_differing_why}` : ''}`],
        ['upgrade killed half-way (SIGKILL)', `database file byte for byte unchanged: ${u.kill_mid_upgrade.database_file_unchanged}`],
        ['upgrade time (one transaction, at start)', `${u.upgrade_s} s`],
        ['size: 0.1.0 → upgraded → after VACUUM', `${mib(u.bytes_0_1_0)} → ${mib(u.bytes_after_upgrade)} → ${mib(u.bytes_after_upgrade_and_vacuum)}`],
      ],
    });
  }
  if (results.daemon && !results.daemon.skipped) {
    const d = results.daemon;
    sections.push({
      title: `Daemon (\`tierwatch run\`, ${d.tiers.toLocaleString('en')} tiers, a sweep ${d.schedule}; RSS ${d.settle_ms} ms after each sweep)`,
      header: ['figure', 'value', 'baseline (idle `node`)', 'ratio'],
      rows: [
        ['first start (creates and migrates the database): idle RSS, median', mib(d.first_start.idle_rss_p50_bytes), mib(d.idle_node_rss_bytes), ratio(d.first_start.idle_rss_p50_bytes / d.idle_node_rss_bytes)],
        ['first start: idle RSS max / peak (VmHWM)', `${mib(d.first_start.idle_rss_max_bytes)} / ${mib(d.first_start.peak_rss_bytes)}`, '', ''],
        ['restart on a migrated database: idle RSS, median', mib(d.restart_on_migrated_db.idle_rss_p50_bytes), mib(d.idle_node_rss_bytes), ratio(d.restart_on_migrated_db.idle_rss_p50_bytes / d.idle_node_rss_bytes)],
        ['restart: idle RSS max / peak (VmHWM)', `${mib(d.restart_on_migrated_db.idle_rss_max_bytes)} / ${mib(d.restart_on_migrated_db.peak_rss_bytes)}`, '', ''],
        ...(d.restart_with_metrics_endpoint
          ? [
              ['restart with the metrics endpoint (TIERWATCH_HTTP_PORT, loads prom-client): idle RSS, median', mib(d.restart_with_metrics_endpoint.idle_rss_p50_bytes), mib(d.idle_node_rss_bytes), ratio(d.restart_with_metrics_endpoint.idle_rss_p50_bytes / d.idle_node_rss_bytes)],
              ['restart with the metrics endpoint: idle RSS max / peak (VmHWM)', `${mib(d.restart_with_metrics_endpoint.idle_rss_max_bytes)} / ${mib(d.restart_with_metrics_endpoint.peak_rss_bytes)}`, '', ''],
            ]
          : []),
      ],
    });
  }
  if (results.endless) {
    sections.push({
      title: '`tierwatch collect` against an endless server (issue 10: bounded by TIERWATCH_MAX_TIERS, target peak RSS < 300 MiB)',
      header: ['server', 'exit', 'error code', 'peak RSS', 'wall'],
      rows: (results.endless as Array<Record<string, any>>).map((r) => [
        r.case,
        String(r.exit),
        r.error_code ?? '',
        r.peak_rss_bytes === null ? 'n/a' : `${mib(r.peak_rss_bytes)}${r.peak_rss_bytes < 300 * 1024 * 1024 ? '' : ' (MISSED)'}`,
        ms(r.wall_ms),
      ]),
    });
  }
  if (results.pg?.skipped) {
    sections.push({ title: 'Postgres beside SQLite', header: ['figure', 'value'], rows: [['skipped', results.pg.skipped]] });
  } else if (results.pg) {
    const rows: string[][] = [];
    for (const [tiers, size] of Object.entries(results.pg.by_tiers as Record<string, PgSizeResult>)) {
      const label = Number(tiers).toLocaleString('en');
      rows.push([label, 'first sweep', ms(size.sqlite.first_sweep_ms), ms(size.postgres.first_sweep_ms), ratio(size.ratio.first_sweep)]);
      rows.push([label, 'steady, unchanged', ms(size.sqlite.steady_unchanged_p50_ms), ms(size.postgres.steady_unchanged_p50_ms), ratio(size.ratio.steady_unchanged)]);
      rows.push([label, 'steady, 1% changed', ms(size.sqlite.steady_changed_1pct_p50_ms), ms(size.postgres.steady_changed_1pct_p50_ms), ratio(size.ratio.steady_changed_1pct)]);
      rows.push([label, 'steady, after a takeover (reload)', '', ms(size.postgres.steady_after_takeover_p50_ms), '']);
    }
    sections.push({
      title: `Postgres beside SQLite (startRun + commitSweep; Postgres ${results.pg.postgres_version}, ${results.pg.server}, one round trip ${ms(results.pg.round_trip_p50_ms)}; steady figures are medians)`,
      header: ['tiers', 'sweep', 'SQLite', 'Postgres', 'Postgres/SQLite'],
      rows,
    });
  }
  const allTargets: Record<string, TargetCheck> = {
    ...(results.sweep?.targets ?? {}),
    ...(results.storage?.targets ?? {}),
    ...(results.queries?.targets ?? {}),
    ...(results.pg?.targets ?? {}),
    ...(results.daemon?.target ? { daemon: results.daemon.target, daemon_restart: results.daemon.target_restart } : {}),
  };
  sections.push({ title: 'Targets (issue 6)', header: ['target', 'measured', 'baseline (same run)', 'ratio', 'verdict'], rows: targetRows(allTargets) });

  const widths = (header: string[], rows: string[][]) => header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const text = [
    `Machine: ${machineLine}`,
    ...sections.map(({ title, header, rows }) => {
      const w = widths(header, rows);
      const fmt = (row: string[]) => row.map((cell, i) => (cell ?? '').padEnd(w[i]!)).join('  ').trimEnd();
      return [`\n${title}`, fmt(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt)].join('\n');
    }),
  ].join('\n');
  const markdown = [
    `Measured with \`npm run bench\` on ${m.started_at.slice(0, 10)}: ${machineLine}. Every ratio is against a baseline measured in the same run.`,
    ...sections.map(({ title, header, rows }) => `\n**${title}**\n\n${markdownTable(header, rows)}`),
  ].join('\n');
  return { text, markdown };
}

// ---------------------------------------------------------------------------------------------

/** The child processes run the built CLI: say so when dist/ is older than the sources it came from. */
function warnIfStaleBuild(): void {
  const cli = BUILT_CLI;
  if (!fs.existsSync(cli)) {
    progress('dist/src/cli.js is missing: run `npm run build` first (the CLI figures will be skipped)');
    return;
  }
  const built = fs.statSync(cli).mtimeMs;
  const newest = (fs.readdirSync(path.join(ROOT, 'src'), { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .reduce((latest, entry) => Math.max(latest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs), 0);
  if (newest > built) progress('warning: src/ is newer than dist/: run `npm run build` so the CLI figures measure the current code');
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
  progress('daemon: tierwatch run against 10,000 tiers (first start, a restart, a restart serving /metrics), reading its RSS between sweeps');
  results.daemon = await benchDaemon({ sweeps: quick ? 3 : 5 });
}
if (only.has('endless')) {
  progress('endless: tierwatch collect against servers whose list never ends, reading its peak RSS');
  results.endless = await benchEndless();
}
if (only.has('pg')) {
  progress('pg: the same sweeps stored in SQLite and in a throwaway Postgres, side by side');
  results.pg = await benchPg({ quick, progress });
}
results.machine.loadavg_at_end = os.loadavg().map((value) => round(value, 2));
results.machine.duration_s = round((performance.now() - began) / 1000, 1);

fs.writeFileSync(values.out!, `${JSON.stringify(results, null, 2)}\n`);
const { text, markdown } = render(results);
process.stdout.write(`${text}\n\nResults: ${path.relative(process.cwd(), values.out!)} (${results.machine.duration_s} s)\n`);
if (values.markdown) fs.writeFileSync(values.markdown, `${markdown}\n`);
