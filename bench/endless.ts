/**
 * Issue 10: the memory of `tierwatch collect` against a server whose list never ends. The built CLI
 * runs as a child process against the simulator (in this process) and reports its own peak RSS
 * (`process.resourceUsage().maxRSS`, read at exit through a preloaded module), so the figure is
 * the whole process's, start-up included. Used by `npm run bench` (section `endless`) and by
 * test/memory-bounds.test.ts, which holds it under 300 MB.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, startSimulator, type Fault } from '../src/sim/index.ts';
import { BUILT_CLI } from './paths.ts';

/** Written to the child's RSS file at exit: its peak resident set, in bytes. */
const REPORT_PEAK_RSS = [
  "import { writeFileSync } from 'node:fs';",
  "process.on('exit', () => writeFileSync(process.env.TIERWATCH_BENCH_RSS_FILE, String(process.resourceUsage().maxRSS * 1024)));",
].join('\n');

export interface ChildRun {
  /** Exit code, or the signal's name when the process was killed (an out-of-memory abort is SIGABRT). */
  exit: number | string;
  /** Peak RSS in bytes, or null when the process died without running its exit handlers. */
  peakRssBytes: number | null;
  wallMs: number;
  stderr: string;
}

/**
 * Runs `node [nodeArgs] dist/src/cli.js collect` against `url` with `env` on top of the demo
 * credentials and a database at `dbPath`.
 */
export async function runBuiltCollect(options: {
  url: string;
  dbPath: string;
  env?: Record<string, string>;
  nodeArgs?: string[];
}): Promise<ChildRun> {
  const rssFile = `${options.dbPath}.rss`;
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      '--import',
      `data:text/javascript,${encodeURIComponent(REPORT_PEAK_RSS)}`,
      BUILT_CLI,
      'collect',
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        QFEX_WS_URL: options.url,
        QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY,
        QFEX_SECRET_KEY: DEMO_SECRET_KEY,
        TIERWATCH_DB: options.dbPath,
        TIERWATCH_BENCH_RSS_FILE: rssFile,
        LOG_LEVEL: 'info',
        ...options.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    // Keep the tail only: an endless sweep logs little, but a crash report can be long.
    stderr = (stderr + chunk).slice(-20_000);
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  const wallMs = performance.now() - started;
  let peakRssBytes: number | null = null;
  try {
    peakRssBytes = Number(readFileSync(rssFile, 'utf8'));
  } catch {
    /* died without exit handlers */
  }
  return { exit: code ?? String(signal), peakRssBytes, wallMs, stderr };
}

export interface EndlessResult {
  case: string;
  exit: number | string;
  error_code: string | null;
  peak_rss_bytes: number | null;
  wall_ms: number;
}

/** The endless servers measured: the 1,000-row pages, and big pages just under the frame limit. */
export const ENDLESS_CASES: Array<{ name: string; fault: Fault; env?: Record<string, string> }> = [
  { name: 'endless 1,000-row pages (defaults)', fault: { kind: 'infinite_list', persistent: true } },
  {
    name: 'endless 20,000-row pages, ~3.3 MB each (defaults)',
    fault: { kind: 'endless_big_pages', rows: 20_000, persistent: true },
  },
  {
    name: 'endless 100,000-row pages, ~16 MB each (TIERWATCH_MAX_FRAME_BYTES=32MiB)',
    fault: { kind: 'endless_big_pages', rows: 100_000, persistent: true },
    env: { TIERWATCH_MAX_FRAME_BYTES: '32MiB' },
  },
];

/** One `tierwatch collect` per endless case, each on a fresh database; the run's error code is read from the log. */
export async function benchEndless(cases = ENDLESS_CASES): Promise<EndlessResult[]> {
  const results: EndlessResult[] = [];
  for (const c of cases) {
    const dir = mkdtempSync(path.join(tmpdir(), 'tierwatch-bench-endless-'));
    const sim = await startSimulator({ host: '127.0.0.1', port: 0 });
    try {
      sim.inject(c.fault);
      const run = await runBuiltCollect({
        url: sim.url,
        dbPath: path.join(dir, 'h.db'),
        ...(c.env === undefined ? {} : { env: c.env }),
      });
      const code = /"code":"([A-Z_]+)"/.exec(run.stderr)?.[1] ?? null;
      results.push({
        case: c.name,
        exit: run.exit,
        error_code: code,
        peak_rss_bytes: run.peakRssBytes,
        wall_ms: Math.round(run.wallMs),
      });
    } finally {
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}
