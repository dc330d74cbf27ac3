/**
 * Query benchmark: the query functions of src/query (what `snapshot`, `diff`, `changes` and
 * `history` call) on a synthetic year of history, in process, median and p95 of repeated calls,
 * each answer checked against the size the model that wrote the history expects.
 *
 * Baseline, per query, measured in the same run: the floor of returning an answer of that size at
 * all — reading the same number of tier_version rows by primary-key range (the cheapest read
 * SQLite has) into objects. A query's ratio to it is what its index work costs on top.
 *
 * The CLI's start-up is measured apart: `tierwatch --version`, and a one-symbol `snapshot` on the
 * same history, each as a child process, against `node -e 0` (Node's own start-up).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  changesBetween,
  diffBetween,
  snapshotAt,
  snapshotRoute,
  snapshotSql,
  symbolHistory,
  historyBounds,
} from '../src/query/index.ts';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { assertSize, checkTarget, median, nowMs, percentile, round, type TargetCheck } from './stats.ts';
import { buildYearHistory, QUERY_SYMBOL, YEAR_RUNS, YEAR_TIERS } from './year-history.ts';
import { BUILT_CLI as CLI } from './paths.ts';

interface Timed {
  samples: number;
  p50_ms: number;
  p95_ms: number;
  rows: number;
  floor_p50_ms: number;
  ratio_to_floor: number;
  plan?: string[];
}

/** A query figure against its target, beside the floor measured in the same run. */
function queryTarget(what: string, timed: Timed, limitMs: number): TargetCheck {
  return checkTarget({
    target: `${what} ≤ ${limitMs} ms`,
    value: timed.p50_ms,
    unit: 'ms (p50)',
    baseline: timed.floor_p50_ms,
    baselineName: `floor: read ${timed.rows} rows by primary key`,
    limit: limitMs,
  });
}

/** Times `query` (which returns its row count) over the given argument list, cycling, and checks every answer. */
function timeQuery<A>(
  db: StoreDb,
  what: string,
  args: readonly A[],
  runs: number,
  query: (arg: A) => number,
  expected: (arg: A) => number,
): Timed {
  const samples: number[] = [];
  for (const arg of args) assertSize(what, query(arg), expected(arg)); // warm-up, and every argument checked once
  for (let i = 0; i < runs; i++) {
    const arg = args[i % args.length]!;
    const start = nowMs();
    const rows = query(arg);
    samples.push(nowMs() - start);
    assertSize(what, rows, expected(arg));
  }
  const floor = floorFor(db, median(args.map(expected)), Math.min(runs, 15));
  const p50 = median(samples);
  return {
    samples: samples.length,
    p50_ms: round(p50),
    p95_ms: round(percentile(samples, 95)),
    rows: median(args.map(expected)),
    floor_p50_ms: round(floor),
    ratio_to_floor: round(p50 / floor, 2),
  };
}

/** Median time to read `rows` tier_version rows by rowid range into objects: the floor of any answer that size. */
function floorFor(db: StoreDb, rows: number, runs: number): number {
  const statement = db.sqlite.prepare(
    `SELECT account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id, valid_from, valid_to, run_id
       FROM tier_version WHERE version_id BETWEEN ? AND ?`,
  );
  const samples: number[] = [];
  statement.all(1000, 1000 + rows - 1);
  for (let i = 0; i < runs; i++) {
    const first = 1000 + ((i * 7919) % 150_000);
    const start = nowMs();
    const answer = statement.all(first, first + rows - 1);
    samples.push(nowMs() - start);
    if (answer.length !== rows) throw new Error(`floor read ${answer.length} rows, expected ${rows}`);
  }
  return Math.max(median(samples), 0.001);
}

function plan(db: StoreDb, sql: string, params: unknown[]): string[] {
  return (db.sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map(
    (row) => row.detail,
  );
}

function count(iterator: Iterable<unknown>): number {
  let n = 0;
  for (const _ of iterator) n += 1;
  return n;
}

async function timeCommand(
  args: string[],
  env: Record<string, string>,
  runs: number,
): Promise<{ p50_ms: number; min_ms: number; samples: number; stdout_bytes: number }> {
  const samples: number[] = [];
  let stdoutBytes = 0;
  for (let i = 0; i < runs + 1; i++) {
    const start = nowMs();
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = 0;
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.length));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const elapsed = nowMs() - start;
    if (code !== 0) throw new Error(`${args.join(' ')} exited with ${code}: ${err.slice(0, 1000)}`);
    if (i > 0) samples.push(elapsed); // the first run warms the page cache
    stdoutBytes = out;
  }
  return {
    p50_ms: round(median(samples)),
    min_ms: round(Math.min(...samples)),
    samples: samples.length,
    stdout_bytes: stdoutBytes,
  };
}

export async function benchQueries(options: { runs?: number; cliRuns?: number } = {}) {
  const runs = options.runs ?? 30;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-bench-queries-'));
  try {
    const dbPath = path.join(dir, 'year.db');
    const year = buildYearHistory(dbPath);
    const expect = year.expectations;
    const db = openDatabase(dbPath, { readonly: true });
    try {
      const bounds = historyBounds(db);
      if (bounds === null || bounds.last_observed_at !== expect.lastObservedAt) {
        throw new Error(`year history ends at ${bounds?.last_observed_at}, expected ${expect.lastObservedAt}`);
      }
      const points = expect.snapshotPoints;
      const oneSymbol = { symbols: [QUERY_SYMBOL] };

      const snapshotOne = timeQuery(
        db,
        'snapshot --symbol',
        points,
        runs,
        (p) => snapshotAt(db, p.at, oneSymbol).length,
        () => expect.queryLadder,
      );
      const snapshotAll = timeQuery(
        db,
        'snapshot (everything)',
        points,
        runs,
        (p) => snapshotAt(db, p.at).length,
        (p) => p.tiers,
      );
      const diffWeek = timeQuery(
        db,
        'diff (one week)',
        [0],
        runs,
        () => diffBetween(db, expect.weekFrom, expect.lastObservedAt).length,
        () => expect.weekDiffRows,
      );
      const diffYear = timeQuery(
        db,
        'diff (the year)',
        [0],
        Math.max(5, Math.round(runs / 4)),
        () => diffBetween(db, expect.firstObservedAt, expect.lastObservedAt).length,
        () => expect.yearDiffRows,
      );
      const changes7d = timeQuery(
        db,
        'changes --since 7d',
        [0],
        runs,
        () => count(changesBetween(db, { since: expect.changesSince })),
        () => expect.changesSinceRows,
      );
      const history = timeQuery(
        db,
        'history SYMBOL',
        [0],
        runs,
        () => symbolHistory(db, QUERY_SYMBOL).length,
        () => expect.historyRows,
      );

      // Query plans of the snapshots at their median point, for the record.
      const middle = points[Math.floor(points.length / 2)]!.at;
      const allSql = snapshotSql(snapshotRoute(middle, bounds, {}), {});
      snapshotAll.plan = plan(db, allSql.sql, [{ at: middle }, ...allSql.params]);
      const oneSql = snapshotSql(snapshotRoute(middle, bounds, oneSymbol), oneSymbol);
      snapshotOne.plan = plan(db, oneSql.sql, [{ at: middle }, ...oneSql.params]);

      // ---- the CLI's own start-up, apart ----
      const cliRuns = options.cliRuns ?? 7;
      let cli: Record<string, unknown> | null = null;
      if (fs.existsSync(CLI)) {
        const env = { TIERWATCH_DB: dbPath, LOG_LEVEL: 'warn' };
        const nodeBaseline = await timeCommand(['-e', '0'], env, cliRuns);
        const version = await timeCommand([CLI, '--version'], env, cliRuns);
        const snapshot = await timeCommand(
          [CLI, 'snapshot', '--at', middle, '--symbol', QUERY_SYMBOL, '--format', 'json'],
          env,
          cliRuns,
        );
        cli = {
          node_baseline: { what: 'node -e 0', ...nodeBaseline },
          version: {
            what: 'tierwatch --version',
            ...version,
            ratio_to_node: round(version.p50_ms / nodeBaseline.p50_ms, 2),
          },
          snapshot_one_symbol: {
            what: `tierwatch snapshot --at T --symbol ${QUERY_SYMBOL} --format json`,
            ...snapshot,
            ratio_to_node: round(snapshot.p50_ms / nodeBaseline.p50_ms, 2),
          },
        };
      }

      return {
        history: {
          tiers: YEAR_TIERS,
          runs: year.runs,
          ok_runs: year.okRuns,
          tier_versions: year.versions,
          tier_changes: year.changes,
          bytes: year.bytes,
          build_s: year.build_s,
          first_observed_at: expect.firstObservedAt,
          last_observed_at: expect.lastObservedAt,
        },
        floor:
          'median time to read the same number of tier_version rows by primary-key range (per query: floor_p50_ms)',
        snapshot_one_symbol: snapshotOne,
        snapshot_everything: snapshotAll,
        diff_week: diffWeek,
        diff_year: diffYear,
        changes_since_7d: changes7d,
        history_symbol: history,
        cli,
        targets: {
          snapshot_one_symbol: queryTarget("one symbol's point-in-time snapshot", snapshotOne, 2),
          snapshot_everything: queryTarget("the whole exchange's snapshot", snapshotAll, 50),
          diff_week: queryTarget('a one-week diff', diffWeek, 20),
          changes_since_7d: queryTarget('`changes --since 7d`', changes7d, 20),
          diff_year: queryTarget('the whole-year diff', diffYear, 100),
        },
        year_runs_expected: YEAR_RUNS,
      };
    } finally {
      db.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
