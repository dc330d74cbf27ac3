/**
 * Issue 10: memory is bounded by what a sweep holds, not by how many pages it reads. The built CLI
 * (`npm run build` first) runs `tierwatch collect` as a child process against an endless simulator
 * and reports its own peak RSS; and a process that dies anyway (an out-of-memory abort under a
 * tiny heap) leaves its run `running`, which the next start marks `abandoned`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchEndless, ENDLESS_CASES, runBuiltCollect } from '../bench/endless.ts';
import { BUILT_CLI } from '../bench/paths.ts';
import { startSimulator } from '../src/sim/index.ts';
import { openDatabase } from '../src/store/db.ts';

const PEAK_RSS_LIMIT = 300 * 1024 * 1024;

function runs(dbPath: string): Array<{ run_id: number; status: string; error_code: string | null }> {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    return db.sqlite.prepare('SELECT run_id, status, error_code FROM runs ORDER BY run_id').all() as Array<{
      run_id: number;
      status: string;
      error_code: string | null;
    }>;
  } finally {
    db.close();
  }
}

test('the built CLI exists (npm run build)', () => {
  assert.ok(existsSync(BUILT_CLI), `${BUILT_CLI} is missing: run npm run build`);
});

test('tierwatch collect against an endless server stops at TIERWATCH_MAX_TIERS under 300 MB peak RSS (default settings)', async () => {
  // The two endless servers the defaults face: the 1,000-row pages, and pages just under the frame limit.
  const results = await benchEndless(ENDLESS_CASES.filter((c) => c.env === undefined));
  for (const result of results) {
    assert.equal(result.exit, 1, result.case);
    assert.equal(result.error_code, 'TIER_LIMIT_REACHED', result.case);
    assert.ok(result.peak_rss_bytes !== null, `${result.case}: the child reported its peak`);
    assert.ok(
      result.peak_rss_bytes < PEAK_RSS_LIMIT,
      `${result.case}: peak RSS ${Math.round(result.peak_rss_bytes / 1048576)} MiB`,
    );
  }
});

test('a collect aborted out of memory leaves its run running; the next start marks it abandoned', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-oom-'));
  const dbPath = join(dir, 'h.db');
  const sim = await startSimulator({ host: '127.0.0.1', port: 0 });
  try {
    // Every bound lifted, and a heap too small for what the endless list brings: V8 aborts the process.
    sim.inject({ kind: 'endless_big_pages', rows: 20_000, persistent: true });
    const dead = await runBuiltCollect({
      url: sim.url,
      dbPath,
      nodeArgs: ['--max-old-space-size=48'],
      env: { TIERWATCH_MAX_TIERS: '100000000', TIERWATCH_MAX_PAGES: '1000000', TIERWATCH_SWEEP_TIMEOUT: '4m' },
    });
    assert.ok(
      dead.exit === 'SIGABRT' || dead.exit === 134,
      `expected an abort, got ${dead.exit}: ${dead.stderr.slice(-500)}`,
    );
    assert.match(dead.stderr, /heap out of memory/i);
    const [left] = runs(dbPath);
    assert.equal(left?.status, 'running', 'the dead process could not record its run');

    sim.clearFaults();
    const next = await runBuiltCollect({ url: sim.url, dbPath });
    assert.equal(next.exit, 0, next.stderr.slice(-1000));
    assert.deepEqual(
      runs(dbPath).map((run) => run.status),
      ['abandoned', 'ok'],
    );
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
