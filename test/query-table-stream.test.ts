/**
 * `tierwatch query` in table format streams like every other table (issue 13): its rows arrive in
 * batches from the statement's child process and each batch is printed before the next is asked
 * for, so neither the time nor the memory grows with more than the rows themselves.
 *
 * Proven through the CLI in a process whose V8 heap is capped well below what holding the rows (or
 * the rendered table) would take: 100,000 rows of ~400 characters are ~40 MB as strings and as much
 * again as one rendered table; the cap is 64 MB, which a streamed table never comes near.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tempHistory, tier } from './query-fixture.ts';
import { CLI } from './helpers/faults.ts';

const ROWS = 100_000;
const HEAP_MB = 64;
// A generated table of ROWS rows: a number (right-aligned), a symbol-like text and a wide text.
const SQL = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
  SELECT i, 'SYM' || i || '-USD' AS symbol, printf('%.400c', 'x') AS wide FROM n`;

describe('tierwatch query --format table at scale', () => {
  it(`streams ${ROWS.toLocaleString('en')} rows in seconds under a ${HEAP_MB} MB heap`, async () => {
    const h = tempHistory();
    try {
      h.sweep('primary', '2026-10-01T00:00:00.000Z', [tier('BTC-USD', '10', 0.1, 0.05, 1000)]);
      const started = performance.now();
      const child = spawn(
        process.execPath,
        [`--max-old-space-size=${HEAP_MB}`, CLI, 'query', SQL, '--format', 'table', '--timeout', '5m'],
        {
          env: { ...process.env, TIERWATCH_DB: h.dbPath, LOG_LEVEL: 'silent' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      // Only counted and the edges kept: the test itself must not hold the table either.
      let lines = 0;
      let head = '';
      let tail = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        for (let at = chunk.indexOf('\n'); at !== -1; at = chunk.indexOf('\n', at + 1)) lines += 1;
        if (head.length < 2000) head += chunk.slice(0, 2000);
        tail = (tail + chunk).slice(-2000);
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      const seconds = (performance.now() - started) / 1000;

      assert.equal(code, 0, stderr);
      // The header, the rule, one line per row (no width: nothing wraps), the last-sweep line.
      assert.equal(lines, ROWS + 3);
      const [header, rule, first] = head.split('\n');
      // Headers are left-aligned; the numeric column's cells are right-aligned under theirs.
      assert.match(header!, /^i +symbol +wide$/);
      assert.match(rule!, /^─+ {2}─+ {2}─{400}$/);
      assert.match(first!, /^\s+1 {2}SYM1-USD\s+x{400}$/);
      const last = tail.trimEnd().split('\n');
      assert.match(last.at(-2)!, new RegExp(`^${ROWS} {2}SYM${ROWS}-USD {2}x{400}$`));
      assert.match(last.at(-1)!, /^Last successful sweep: 2026-10-01T00:00:00\.000Z/);
      // Generous for a loaded machine; the point is seconds, not minutes.
      assert.ok(seconds < 90, `${ROWS} rows took ${seconds.toFixed(1)} s`);
    } finally {
      h.close();
    }
  });
});
