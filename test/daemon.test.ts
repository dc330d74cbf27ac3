/**
 * The daemon: scheduled sweeps, shutdown in the middle of a sweep (in process and as a real child
 * process receiving signals), the HTTP endpoint, and recovery of runs a crash left `running`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { runDaemon } from '../src/collect/daemon.ts';
import type { SweepResult } from '../src/collect/sweep.ts';
import { openDatabase } from '../src/store/db.ts';
import { LogCapture, startHarness } from './helpers/harness.ts';
import { startHttpDaemon } from './helpers/http-daemon.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

function runs(dbPath: string): Array<Record<string, unknown>> {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    return db.sqlite.prepare('SELECT run_id, status, error_code FROM runs ORDER BY run_id').all() as Array<
      Record<string, unknown>
    >;
  } finally {
    db.close();
  }
}

/**
 * Resolves with the first log line (parsed) that satisfies the predicate. The timeout only guards
 * against a hang: on a loaded machine a daemon's start and first sweep can take many seconds.
 */
function waitForLog(
  logs: LogCapture | NodeJS.ReadableStream,
  predicate: (line: Record<string, unknown>) => boolean,
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for a log line')), timeoutMs);
    let buffer = '';
    const check = (line: Record<string, unknown>) => {
      if (predicate(line)) {
        clearTimeout(timer);
        resolve(line);
        return true;
      }
      return false;
    };
    if (logs instanceof LogCapture) {
      if (logs.lines.some(check)) return;
      const original = logs._write.bind(logs);
      logs._write = (chunk, encoding, callback) => {
        original(chunk, encoding, callback);
        logs.lines.some(check);
      };
      return;
    }
    logs.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const part of parts) {
        try {
          if (check(JSON.parse(part) as Record<string, unknown>)) return;
        } catch {
          /* not a log line */
        }
      }
    });
  });
}

test('the daemon sweeps at start and on every firing, then stops cleanly', async () => {
  const h = await startHarness();
  try {
    const config = h.config({ TIERWATCH_SCHEDULE: '* * * * * *' });
    const stop = new AbortController();
    const seen: SweepResult[] = [];
    const threeSweeps = new Promise<void>((resolve) => {
      void runDaemon(config, h, stop.signal, {
        onSweep(result) {
          seen.push(result);
          if (seen.length === 3) resolve();
        },
      }).then((clean) => assert.equal(clean, true));
    });
    await threeSweeps;
    stop.abort();
    assert.ok(seen.every((result) => result.ok));
    assert.deepEqual(
      seen.map((result) => result.runId),
      [1, 2, 3],
    );
    // The first firing after start comes from the schedule, not from a loop: the times differ.
    const [firstSweep, , thirdSweep] = seen;
    assert.ok(firstSweep?.ok && thirdSweep?.ok && thirdSweep.observedAt > firstSweep.observedAt);
  } finally {
    await h.close();
  }
});

test('shutdown during a sweep records an aborted run and changes no history', async () => {
  const h = await startHarness();
  try {
    const config = h.config({ TIERWATCH_SCHEDULE: '0 0 1 1 *', TIERWATCH_REQUEST_TIMEOUT: '60s' });
    h.sim.inject({ kind: 'never_answer_page', page: 1 });
    const stop = new AbortController();
    let result: SweepResult | undefined;
    const done = runDaemon(config, h, stop.signal, { onSweep: (r) => (result = r) });
    await waitForLog(h.logs, (line) => h.sim.stats.pageRequests > 0 || line.msg === 'daemon started');
    while (h.sim.stats.pageRequests === 0) await new Promise((resolve) => setImmediate(resolve));
    stop.abort();
    assert.equal(await done, true, 'the sweep in flight stopped within the shutdown bound');
    assert.equal(result?.ok, false);
    if (result && !result.ok) assert.equal(result.error.code, 'ABORTED');
    const ledger = h.db.sqlite.prepare('SELECT status, error_code FROM runs').all();
    assert.deepEqual(ledger, [{ status: 'aborted', error_code: 'ABORTED' }]);
    assert.equal((h.db.sqlite.prepare('SELECT count(*) AS n FROM tier_versions').get() as { n: number }).n, 0);
  } finally {
    await h.close();
  }
});

test('`tierwatch run` serves /healthz and /metrics while it runs', async () => {
  const h = await startHarness();
  try {
    const daemon = await startHttpDaemon(h);
    const base = daemon.base;
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.match(await health.text(), /^healthy: 1 account/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /tierwatch_runs_total\{account="primary",status="ok"\} 1/);
    assert.match(metrics, new RegExp(`tierwatch_tiers\\{account="primary"\\} ${h.sim.tiers().length}`));
    assert.match(metrics, /tierwatch_last_success_timestamp_seconds\{account="primary"\} \d+/);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal(await daemon.stop(), 0);
  } finally {
    await h.close();
  }
});

function spawnCli(args: string[], env: Record<string, string>): ChildProcess & { stderrText: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (text += chunk));
  return Object.assign(child, { stderrText: () => text });
}

test('a real daemon process: SIGTERM mid-sweep exits 0 with an aborted run; SIGKILL leaves a run that the next start marks abandoned', async () => {
  const h = await startHarness();
  try {
    const env = { ...h.env, TIERWATCH_SCHEDULE: '0 0 1 1 *', TIERWATCH_REQUEST_TIMEOUT: '60s', LOG_LEVEL: 'debug' };
    h.db.close(); // the child process is the writer now

    h.sim.inject({ kind: 'never_answer_page', page: 1 });
    const first = spawnCli(['run'], env);
    while (h.sim.stats.pageRequests === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    first.kill('SIGTERM');
    const [code] = (await once(first, 'exit')) as [number | null];
    assert.equal(code, 0, first.stderrText());
    assert.deepEqual(runs(h.dbPath), [{ run_id: 1, status: 'aborted', error_code: 'ABORTED' }]);

    h.sim.inject({ kind: 'never_answer_page', page: 1 });
    const requestsBefore = h.sim.stats.pageRequests;
    const second = spawnCli(['run'], env);
    while (h.sim.stats.pageRequests === requestsBefore) await new Promise((resolve) => setTimeout(resolve, 10));
    second.kill('SIGKILL');
    await once(second, 'exit');
    assert.deepEqual(runs(h.dbPath).at(-1), { run_id: 2, status: 'running', error_code: null });

    const third = spawnCli(['collect'], env);
    const [thirdCode] = (await once(third, 'exit')) as [number | null];
    assert.equal(thirdCode, 0, third.stderrText());
    assert.deepEqual(runs(h.dbPath), [
      { run_id: 1, status: 'aborted', error_code: 'ABORTED' },
      { run_id: 2, status: 'abandoned', error_code: null },
      { run_id: 3, status: 'ok', error_code: null },
    ]);
  } finally {
    await h.close();
  }
});

test('a second signal forces the daemon out at once', async () => {
  const h = await startHarness();
  try {
    const env = {
      ...h.env,
      TIERWATCH_SCHEDULE: '0 0 1 1 *',
      TIERWATCH_REQUEST_TIMEOUT: '60s',
      TIERWATCH_SHUTDOWN_TIMEOUT: '60s',
    };
    h.db.close();
    // A page that never comes and a client that ignores the abort would hang shutdown for a minute;
    // the second SIGINT must not wait for it.
    h.sim.inject({ kind: 'never_answer_page', page: 1 });
    const child = spawnCli(['run'], env);
    while (h.sim.stats.pageRequests === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    child.kill('SIGINT');
    child.kill('SIGINT');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.ok(code === 0 || code === 130, `exit code ${String(code)}`);
    assert.match(child.stderrText(), /SIGINT received, stopping/);
  } finally {
    await h.close();
  }
});
