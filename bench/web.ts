/**
 * Web view benchmark (issue 14): every page and API answer of `tierwatch serve` over the one-year
 * history, timed over HTTP on loopback (request sent → last byte read: an upper bound on the
 * server's time, target ≤ 300 ms), beside the CLI's time for the same question measured in the same
 * run (the command run in process with `--format json` to a sink: the query and its JSON, without
 * Node's start-up), and each page's weight (target ≤ 300 KB with its stylesheet).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../src/log.ts';
import { runCli } from '../src/program.ts';
import { startWebServer } from '../src/web/server.ts';
import { checkTarget, median, nowMs, percentile, round, type TargetCheck } from './stats.ts';
import { buildYearHistory, QUERY_SYMBOL } from './year-history.ts';

const LIMIT_MS = 300;
const WEIGHT_LIMIT_BYTES = 300 * 1024;

/** A sink for the CLI's stdout that counts bytes. */
class Sink extends Writable {
  bytes = 0;
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.bytes += chunk.length;
    callback();
  }
}

async function timeCli(argv: string[], dbPath: string, runs: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const stdout = new Sink();
    const start = nowMs();
    const code = await runCli([...argv, '--format', 'json'], {
      stdout,
      stderr: new Sink(),
      env: { TIERWATCH_DB: dbPath, LOG_LEVEL: 'silent' },
      stdoutIsTTY: false,
      signal: new AbortController().signal,
    });
    if (code !== 0) throw new Error(`tierwatch ${argv.join(' ')} exited ${code}`);
    if (i > 0) samples.push(nowMs() - start);
  }
  return median(samples);
}

async function timeGet(url: string, runs: number): Promise<{ p50: number; p95: number; bytes: number }> {
  const samples: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs + 1; i++) {
    const start = nowMs();
    const response = await fetch(url);
    const body = await response.arrayBuffer();
    const elapsed = nowMs() - start;
    if (response.status !== 200) {
      throw new Error(`${url} answered ${response.status}: ${Buffer.from(body).toString('utf8').slice(0, 500)}`);
    }
    if (i > 0) samples.push(elapsed); // the first warms the statement cache
    bytes = body.byteLength;
  }
  return { p50: median(samples), p95: percentile(samples, 95), bytes };
}

/** One answer's figures, as written to results.json. */
export interface WebAnswerFigures {
  what: string;
  path: string;
  http_p50_ms: number;
  http_p95_ms: number;
  bytes: number;
  weight_with_css_bytes?: number;
  cli: string | null;
  cli_in_process_p50_ms: number | null;
}

export async function benchWeb(options: { runs?: number } = {}) {
  const runs = options.runs ?? 15;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-bench-web-'));
  try {
    const dbPath = path.join(dir, 'year.db');
    const year = buildYearHistory(dbPath);
    const expect = year.expectations;
    const server = await startWebServer({
      dbPath,
      token: null,
      healthMaxAgeMs: 600_000,
      accounts: null,
      logger: createLogger({ level: 'silent' }),
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const at = expect.snapshotPoints[Math.floor(expect.snapshotPoints.length / 2)]!.at;
      const symbolPath = `/symbol/${encodeURIComponent(QUERY_SYMBOL)}`;
      const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
      // [what, path, the CLI's argv for the same question (null: a page with no single CLI twin)]
      const cases: Array<[string, string, string[] | null]> = [
        ['page: overview', '/', null],
        ['page: symbol (ladder at the last sweep, history, changes)', symbolPath, ['history', QUERY_SYMBOL]],
        [
          'page: symbol, a date compared',
          `${symbolPath}?${q({ at, compare: expect.weekFrom })}`,
          ['history', QUERY_SYMBOL],
        ],
        [
          'page: changes of the last 7 days (first 100)',
          `/changes?${q({ since: expect.changesSince })}`,
          ['changes', '--since', expect.changesSince],
        ],
        ['page: changes, the whole year (first 100)', '/changes', null],
        ['page: changes, the whole year, page 10', `/changes?${q({ page: '10' })}`, null],
        [
          'page: diff over one week',
          `/diff?${q({ from: expect.weekFrom, to: expect.lastObservedAt })}`,
          ['diff', expect.weekFrom, expect.lastObservedAt],
        ],
        ['page: runs (last 200)', '/runs', ['runs', '--last', '200']],
        [
          'api: snapshot --at T --symbol S',
          `/api/snapshot?${q({ at, symbol: QUERY_SYMBOL })}`,
          ['snapshot', '--at', at, '--symbol', QUERY_SYMBOL],
        ],
        ['api: snapshot --at T (whole exchange)', `/api/snapshot?${q({ at })}`, ['snapshot', '--at', at]],
        [
          'api: diff over one week',
          `/api/diff?${q({ from: expect.weekFrom, to: expect.lastObservedAt })}`,
          ['diff', expect.weekFrom, expect.lastObservedAt],
        ],
        [
          'api: diff over the year',
          `/api/diff?${q({ from: expect.firstObservedAt, to: expect.lastObservedAt })}`,
          ['diff', expect.firstObservedAt, expect.lastObservedAt],
        ],
        [
          'api: changes --since 7d',
          `/api/changes?${q({ since: expect.changesSince })}`,
          ['changes', '--since', expect.changesSince],
        ],
        ['api: history SYMBOL', `/api/history/${encodeURIComponent(QUERY_SYMBOL)}`, ['history', QUERY_SYMBOL]],
        ['api: runs --last 1000', '/api/runs?last=1000', ['runs', '--last', '1000']],
        ['api: runs (all, the whole year)', '/api/runs', ['runs']],
      ];
      const css = (await timeGet(new URL('/assets/style.css', server.url).href, 1)).bytes;
      // The floor of any answer: a round trip to /healthz, which reads nothing.
      const floor = (await timeGet(new URL('/healthz', server.url).href, runs)).p50;
      const rows: WebAnswerFigures[] = [];
      const targets: Record<string, TargetCheck> = {};
      for (const [what, urlPath, argv] of cases) {
        const web = await timeGet(new URL(urlPath, server.url).href, runs);
        const cliMs = argv === null ? null : await timeCli(argv, dbPath, Math.max(3, Math.round(runs / 3)));
        const page = what.startsWith('page:');
        const row: WebAnswerFigures = {
          what,
          path: urlPath,
          http_p50_ms: round(web.p50),
          http_p95_ms: round(web.p95),
          bytes: web.bytes,
          ...(page ? { weight_with_css_bytes: web.bytes + css } : {}),
          cli: argv === null ? null : `tierwatch ${argv.join(' ')} --format json`,
          cli_in_process_p50_ms: cliMs === null ? null : round(cliMs),
        };
        rows.push(row);
        const key = what
          .replace(/[^a-z0-9]+/gi, '_')
          .toLowerCase()
          .replace(/^_|_$/g, '');
        targets[`web_${key}`] = checkTarget({
          target: `${what} ≤ ${LIMIT_MS} ms`,
          value: row.http_p50_ms,
          unit: 'ms (p50, HTTP on loopback)',
          ...(cliMs === null
            ? { baseline: round(floor), baselineName: 'HTTP floor: GET /healthz' }
            : { baseline: round(cliMs), baselineName: 'the CLI, same question, in process' }),
          limit: LIMIT_MS,
        });
        if (page) {
          targets[`weight_${key}`] = checkTarget({
            target: `${what} ≤ 300 KB`,
            value: web.bytes + css,
            unit: 'bytes with its stylesheet',
            baseline: WEIGHT_LIMIT_BYTES,
            baselineName: 'the budget',
            limit: WEIGHT_LIMIT_BYTES,
          });
        }
      }
      return {
        history: { runs: year.runs, tier_versions: year.versions, tier_changes: year.changes },
        stylesheet_bytes: css,
        http_floor_p50_ms: round(floor),
        answers: rows,
        targets,
      };
    } finally {
      await server.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
