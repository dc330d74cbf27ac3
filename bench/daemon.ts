/**
 * Daemon benchmark: the resident memory of `tierwatch run` (the built CLI, as deployed) between
 * sweeps of a 10,000-tier universe served by the simulator in its own process. The schedule fires
 * every few seconds; VmRSS is read from /proc/PID/status a while after each sweep's "sweep ok" log
 * line, when the daemon is idle. Baseline, same run: an idle `node` process doing nothing.
 * Three phases: a first start (creates and migrates the database), a restart on the migrated
 * database, and a restart with the Prometheus endpoint on (TIERWATCH_HTTP_PORT), which loads
 * prom-client: the daemon loads it only when the endpoint is configured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY } from '../src/sim/index.ts';
import { startSimProcess } from './sim-control.ts';
import { checkTarget, median, round } from './stats.ts';
import { BUILT_CLI as CLI } from './paths.ts';

const TIERS = 10_000;
const SCHEDULE_SECONDS = 4;
/** How long after a sweep ends the reading is taken: idle, and well before the next firing. */
const SETTLE_MS = 1500;
const LIMIT_BYTES = 80 * 1024 * 1024;

/** VmRSS and VmHWM of a process, in bytes (Linux only; null elsewhere). */
export function procMemory(pid: number): { rss_bytes: number; hwm_bytes: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss_bytes: field('VmRSS'), hwm_bytes: field('VmHWM') };
  } catch {
    return null;
  }
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

/** Idle RSS of a Node process that loads nothing: the floor any Node daemon starts from. */
async function idleNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await delay(SETTLE_MS);
    return procMemory(child.pid!)?.rss_bytes ?? NaN;
  } finally {
    await stop(child);
  }
}

/**
 * Idle RSS of `tierwatch run` over a few sweeps. `migrated`: the database was migrated beforehand by
 * `tierwatch migrate` (a restart); otherwise the daemon creates and migrates it itself (a first start).
 */
async function daemonPhase(
  url: string,
  dir: string,
  migrated: boolean,
  readingsWanted: number,
  extraEnv: Record<string, string> = {},
) {
  const env = {
    PATH: process.env.PATH ?? '',
    QFEX_WS_URL: url,
    QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY,
    QFEX_SECRET_KEY: DEMO_SECRET_KEY,
    TIERWATCH_DB: path.join(dir, migrated ? 'restart.db' : 'first.db'),
    TIERWATCH_SCHEDULE: `*/${SCHEDULE_SECONDS} * * * * *`,
    LOG_LEVEL: 'info',
    ...extraEnv,
  };
  if (migrated) {
    const migrate = spawn(process.execPath, [CLI, 'migrate'], { env, stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => migrate.once('exit', resolve));
    if (code !== 0) throw new Error(`tierwatch migrate exited with ${code}`);
  }
  let daemon: ChildProcess | null = null;
  try {
    daemon = spawn(process.execPath, [CLI, 'run'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const pid = daemon.pid!;
    const readings: Array<{ sweep: number; rss_bytes: number; hwm_bytes: number }> = [];
    let sweeps = 0;
    let failure: string | null = null;
    let pending = '';
    const done = new Promise<void>((resolve, reject) => {
      daemon!.once('exit', (code) => reject(new Error(`tierwatch run exited early with ${code}: ${failure ?? ''}`)));
      daemon!.stderr!.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          let entry: { msg?: string; level?: number | string };
          try {
            entry = JSON.parse(line) as typeof entry;
          } catch {
            continue;
          }
          if (typeof entry.msg === 'string' && entry.msg.startsWith('sweep failed')) failure = entry.msg;
          if (typeof entry.msg !== 'string' || !entry.msg.startsWith('sweep ok')) continue;
          sweeps += 1;
          const sweep = sweeps;
          setTimeout(() => {
            const memory = procMemory(pid);
            if (memory === null) return;
            readings.push({ sweep, ...memory });
            if (readings.length >= readingsWanted + 1) resolve();
          }, SETTLE_MS);
        }
      });
    });
    // Bounded: the first sweep loads 10,000 tiers, then one sweep every SCHEDULE_SECONDS.
    const deadline = delay((readingsWanted + 4) * SCHEDULE_SECONDS * 1000 + 30_000, undefined, { ref: false }).then(
      () => {
        throw new Error(
          `tierwatch run made ${sweeps} sweeps in time, ${readingsWanted + 1} were needed${failure ? ` (${failure})` : ''}`,
        );
      },
    );
    await Promise.race([done, deadline]);
    const code = await stop(daemon);
    daemon = null;
    // The first reading follows the initial load (every tier added); the steady state is the rest.
    const steady = readings.slice(1);
    return {
      readings,
      idle_rss_p50_bytes: median(steady.map((reading) => reading.rss_bytes)),
      idle_rss_max_bytes: Math.max(...steady.map((reading) => reading.rss_bytes)),
      peak_rss_bytes: Math.max(...readings.map((reading) => reading.hwm_bytes)),
      exit_code_after_sigterm: code,
    };
  } finally {
    if (daemon !== null) await stop(daemon);
  }
}

export async function benchDaemon(options: { sweeps?: number } = {}) {
  if (!fs.existsSync('/proc/self/status')) {
    return { skipped: 'no /proc: idle RSS is read from /proc/PID/status (Linux only)' };
  }
  if (!fs.existsSync(CLI)) return { skipped: `${CLI} is missing: run \`npm run build\` first` };
  const readingsWanted = options.sweeps ?? 5;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-bench-daemon-'));
  const sim = await startSimProcess(TIERS, 3);
  try {
    const baseline = await idleNodeRss();
    const firstStart = await daemonPhase(sim.url, dir, false, readingsWanted);
    const restart = await daemonPhase(sim.url, dir, true, readingsWanted);
    // Port 0: any free loopback port; the figure is the memory of serving /metrics, not a request.
    const withMetrics = await daemonPhase(sim.url, dir, true, readingsWanted, {
      TIERWATCH_HTTP_PORT: '0',
      TIERWATCH_HTTP_HOST: '127.0.0.1',
    });
    const idle = firstStart.idle_rss_p50_bytes;
    return {
      tiers: TIERS,
      schedule: `every ${SCHEDULE_SECONDS} s`,
      settle_ms: SETTLE_MS,
      first_start: firstStart,
      restart_on_migrated_db: restart,
      restart_with_metrics_endpoint: withMetrics,
      idle_rss_p50_bytes: idle,
      idle_node_rss_bytes: baseline,
      target: checkTarget({
        target: 'daemon idle RSS ≤ 80 MB (first start, which migrates)',
        value: round(idle / 1048576, 1),
        unit: 'MiB',
        baseline: round(baseline / 1048576, 1),
        baselineName: 'idle `node -e` process',
        limit: LIMIT_BYTES / 1048576,
      }),
      target_restart: checkTarget({
        target: 'daemon idle RSS ≤ 80 MB (restart on a migrated database)',
        value: round(restart.idle_rss_p50_bytes / 1048576, 1),
        unit: 'MiB',
        baseline: round(baseline / 1048576, 1),
        baselineName: 'idle `node -e` process',
        limit: LIMIT_BYTES / 1048576,
      }),
    };
  } finally {
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
