/**
 * `tierwatch query` can neither hang nor keep the WAL from being checkpointed (issue 11): a
 * statement runs in a child process that --timeout, SIGINT and SIGTERM stop at once; SQL runtime
 * errors are usage errors; the guard refuses `pragma_*` functions that are not plain reads.
 *
 * The signal and timeout tests spawn the CLI and wait for its "statement started" log line (the
 * statement is then running) before they act; the line also names the statement's process, so the
 * tests can check that it is gone afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import type { StoreDb } from '../src/store/db.ts';
import { prepareReadOnly } from '../src/query/readonly-sql.ts';
import { isTierwatchError } from '../src/errors.ts';
import { cli, tempHistory, tier, type TempHistory } from './query-fixture.ts';
import { CLI, spawnCli, type CliChild } from './helpers/faults.ts';

/** Never returns a row: count(*) over an endless recursion, reading `runs` so it holds a snapshot. */
const RUNAWAY =
  'WITH RECURSIVE r(x) AS (SELECT count(*) FROM runs UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r';

/** Whether `pid` is a live process (a zombie waiting to be reaped counts as gone). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until `pid` is gone; false if it is still there after `ms`. No event tells another process's end. */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (running(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

/** Starts `tierwatch query SQL` and waits until its statement is running; returns the statement's pid. */
async function startQuery(dbPath: string, args: string[]): Promise<{ cli: CliChild; queryPid: number }> {
  const child = spawnCli(['query', ...args], { TIERWATCH_DB: dbPath, LOG_LEVEL: 'debug' });
  await child.waitFor('statement started', 60_000);
  const line = child
    .stderr()
    .split('\n')
    .find((text) => text.includes('statement started'))!;
  const queryPid = (JSON.parse(line) as { query_pid: number }).query_pid;
  // Its own process, not the CLI's. Whether it still runs is not asked here: with a 5 s --timeout on a
  // loaded machine, the statement can already be stopped by the time this line is read.
  assert.ok(Number.isInteger(queryPid) && queryPid !== child.child.pid, 'the statement runs in its own process');
  return { cli: child, queryPid };
}

const walBytes = (dbPath: string): number => (fs.existsSync(`${dbPath}-wal`) ? fs.statSync(`${dbPath}-wal`).size : 0);

describe('tierwatch query stops: --timeout, SIGINT, SIGTERM', () => {
  let h: TempHistory;
  before(() => {
    h = tempHistory();
    h.sweep('primary', '2026-10-01T00:00:00.000Z', [tier('META-USD', '20', 0.05, 0.025, 190_000)]);
  });
  after(() => h.close());

  it(
    'ends a runaway statement at --timeout with QUERY_TIMEOUT (exit 1), its process gone',
    { timeout: 120_000 },
    async () => {
      // The timeout counts from the start of the command; 5 s leaves a loaded machine time to start it.
      const { cli: child, queryPid } = await startQuery(h.dbPath, ['--timeout', '5s', RUNAWAY]);
      const code = await child.exited;
      assert.equal(code, 1, child.stderr());
      assert.match(child.stderr(), /tierwatch query: The statement ran longer than --timeout 5s and was stopped/);
      assert.doesNotMatch(child.stderr(), /this is a bug/);
      assert.equal(child.stdout(), '');
      assert.ok(await goneWithin(queryPid, 10_000), 'the statement process is killed');
    },
  );

  for (const [signal, expected] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`stops at once on ${signal} with exit ${expected}`, { timeout: 120_000 }, async () => {
      const { cli: child, queryPid } = await startQuery(h.dbPath, ['--timeout', '10m', RUNAWAY]);
      assert.ok(running(queryPid), 'the statement is running when the signal is sent');
      const sentAt = Date.now();
      child.child.kill(signal);
      const code = await child.exited;
      const tookMs = Date.now() - sentAt;
      assert.equal(code, expected, child.stderr());
      assert.match(child.stderr(), new RegExp(`The query was stopped by ${signal}`));
      // "At once": the statement itself would run for ever; a loaded machine still exits in well under this.
      assert.ok(tookMs < 10_000, `exited ${tookMs} ms after ${signal}`);
      assert.ok(await goneWithin(queryPid, 10_000), 'the statement process is killed');
    });
  }

  it(
    'an orphaned statement dies with its parent: the CLI killed with SIGKILL leaves nothing reading',
    { timeout: 120_000 },
    async () => {
      const { cli: child, queryPid } = await startQuery(h.dbPath, ['--timeout', '10m', RUNAWAY]);
      child.child.kill('SIGKILL');
      await child.exited;
      assert.ok(await goneWithin(queryPid, 15_000), 'the statement process noticed its parent was gone');
    },
  );

  it('takes --timeout as a duration, 30s by default, and refuses anything else with exit 2', async () => {
    const help = await cli(h.dbPath, ['query', '--help']);
    assert.match(help.stdout, /--timeout <duration>.*default 30s/s);
    const bad = await cli(h.dbPath, ['query', '--timeout', 'soon', 'SELECT 1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /`--timeout`.*"soon"/);
    const fine = await cli(h.dbPath, ['query', '--timeout', '2m', 'SELECT 1 AS one', '--format', 'json']);
    assert.equal(fine.code, 0, fine.stderr);
    assert.deepEqual(JSON.parse(fine.stdout), [{ one: 1 }]);
  });
});

describe('a runaway query next to a writer: the WAL stays bounded', () => {
  it(
    'grows while the reader holds its snapshot, and stops growing once --timeout ends it',
    { timeout: 180_000 },
    async (t) => {
      const h = tempHistory();
      try {
        const ladder = Array.from({ length: 40 }, (_, index) => `S${index}-USD`);
        let round = 0;
        // One sweep changes every tier (max_notional alternates), then checkpoints, as the daemon does.
        const sweep = (): ReturnType<StoreDb['checkpoint']> => {
          round += 1;
          const at = new Date(Date.parse('2026-10-01T00:00:00.000Z') + round * 60_000).toISOString();
          h.sweep(
            'primary',
            at,
            ladder.map((symbol) => tier(symbol, '10', 0.1, 0.05, round % 2 === 0 ? 100_000 : 120_000)),
          );
          return h.db.checkpoint();
        };
        for (let i = 0; i < 4; i++) sweep();
        const before = walBytes(h.dbPath);

        // 10 s, counted from the command's start: a loaded machine can take 5 s just to start it.
        const { cli: child } = await startQuery(h.dbPath, ['--timeout', '10s', RUNAWAY]);
        let ended = false;
        void child.exited.then(() => (ended = true));
        let during = before;
        let largestStep = 0;
        let blocked = 0;
        while (!ended) {
          const result = sweep();
          if (result.checkpointedFrames < result.walFrames) blocked += 1;
          const size = walBytes(h.dbPath);
          largestStep = Math.max(largestStep, size - during);
          during = Math.max(during, size);
          // Paced, not as fast as the machine allows: the WAL must show the reader's effect without
          // writing hundreds of MB to a shared disk (a sweep is ~0.4 MB here).
          await delay(100);
        }
        assert.equal(await child.exited, 1, child.stderr());
        assert.match(child.stderr(), /--timeout 10s/);
        // The reader's snapshot kept the checkpoints from completing, so the WAL grew past its old size.
        assert.ok(
          blocked > 0 && during > before,
          `before ${before} B, during ${during} B, ${blocked} blocked checkpoints`,
        );

        // With the reader gone, the next sweep appends once more and its checkpoint copies everything;
        // later sweeps reuse the WAL from its start instead of appending: the size stays where it is.
        const first = sweep();
        assert.equal(first.busy, false);
        assert.equal(first.checkpointedFrames, first.walFrames, 'the first checkpoint after the query is complete');
        const settled = walBytes(h.dbPath);
        // One sweep's frames vary by a page or two as the B-trees split (CI once saw one 4 KB frame more
        // than the largest step before), so allow a quarter more than one sweep, far below a second one.
        const oneSweep = Math.ceil(largestStep * 1.25);
        assert.ok(
          settled <= during + oneSweep,
          `settled at ${settled} B, more than ${during} B + one sweep (${largestStep} B, with slack ${oneSweep} B)`,
        );
        let afterwards = 0;
        for (let i = 0; i < 20; i++) {
          const result = sweep();
          assert.equal(result.checkpointedFrames, result.walFrames);
          afterwards = Math.max(afterwards, walBytes(h.dbPath));
        }
        assert.ok(
          afterwards <= settled,
          `the WAL grew again to ${afterwards} B after the reader was gone (settled at ${settled} B)`,
        );
        t.diagnostic(
          `WAL: ${before} B before, up to ${during} B while the query ran (${blocked} blocked checkpoints), at most ${afterwards} B over 20 more sweeps`,
        );
      } finally {
        h.close();
      }
    },
  );
});

describe('SQL runtime errors are usage errors', () => {
  let h: TempHistory;
  before(() => {
    h = tempHistory();
    h.sweep('primary', '2026-10-01T00:00:00.000Z', [tier('META-USD', '20', 0.05, 0.025, 190_000)]);
  });
  after(() => h.close());

  const cases: Array<[string, RegExp]> = [
    [`SELECT json('{not json')`, /The statement failed: malformed JSON/],
    [`SELECT abs(-9223372036854775808)`, /The statement failed: integer overflow/],
    [`SELECT sum(x) FROM (SELECT 9223372036854775807 AS x UNION ALL SELECT 1)`, /integer overflow/],
    [`SELECT zeroblob(2000000000)`, /string or blob too big/],
    [`SELECT * FROM tier_versions WHERE symbol = ?`, /has parameters .*Too few parameter values/],
    [`SELECT ${Array.from({ length: 33_000 }, () => '?').join(',')}`, /too many SQL variables/],
  ];
  for (const [sql, message] of cases) {
    it(`${sql.slice(0, 70)} → exit 2 with SQLite's message`, async () => {
      const result = await cli(h.dbPath, ['query', sql, '--format', 'json']);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /this is a bug/);
      assert.equal(result.stderr.trim().split('\n').length, 1, `one line, no stack: ${result.stderr}`);
    });
  }
});

describe('the guard covers pragma_* table-valued functions; the connection is query_only', () => {
  let h: TempHistory;
  before(() => {
    h = tempHistory();
    h.sweep('primary', '2026-10-01T00:00:00.000Z', [tier('META-USD', '20', 0.05, 0.025, 190_000)]);
  });
  after(() => h.close());

  const refused = [
    'SELECT * FROM pragma_optimize',
    'SELECT * FROM main.pragma_optimize',
    'SELECT * FROM "PRAGMA_OPTIMIZE"',
    'SELECT * FROM pragma_user_version(7)',
    `SELECT * FROM pragma_journal_mode WHERE arg = 'delete'`,
    'SELECT * FROM pragma_wal_checkpoint',
    'SELECT 1 FROM runs, [pragma_incremental_vacuum]',
    'WITH x AS (SELECT * FROM pragma_shrink_memory) SELECT * FROM x',
  ];
  it('the guard itself refuses them, even on a writable connection, and the CLI exits 2', async () => {
    for (const sql of refused) {
      // A writable connection: what stops the statement here is the guard, not the read-only open.
      assert.throws(
        () => prepareReadOnly(h.db.sqlite, sql),
        (error: unknown) =>
          isTierwatchError(error, 'USAGE') && /Refused .*not on the list of read-only pragmas/.test(error.message),
        sql,
      );
      const result = await cli(h.dbPath, ['query', sql]);
      assert.equal(result.code, 2, `${sql}: ${result.stderr}`);
      assert.match(result.stderr, /Refused/);
    }
  });

  it('still allows pragma functions that only report, and pragma names inside strings', async () => {
    const allowed: Array<[string, unknown]> = [
      [`SELECT name FROM pragma_table_info('runs') LIMIT 1`, [{ name: 'run_id' }]],
      [`SELECT count(*) > 0 AS some FROM pragma_index_list('tier_version')`, [{ some: 1 }]],
      [`SELECT count(*) > 0 AS some FROM pragma_compile_options`, [{ some: 1 }]],
      [`SELECT 'pragma_optimize' AS text`, [{ text: 'pragma_optimize' }]],
    ];
    for (const [sql, expected] of allowed) {
      const result = await cli(h.dbPath, ['query', sql, '--format', 'json']);
      assert.equal(result.code, 0, `${sql}: ${result.stderr}`);
      assert.deepEqual(JSON.parse(result.stdout), expected, sql);
    }
  });

  it('runs the statement on a connection with PRAGMA query_only = 1', async () => {
    const result = await cli(h.dbPath, ['query', 'PRAGMA query_only', '--format', 'json']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), [{ query_only: 1 }]);
  });
});

describe('rows stream from the statement process in batches', () => {
  let h: TempHistory;
  before(() => {
    h = tempHistory();
    h.sweep('primary', '2026-10-01T00:00:00.000Z', [tier('META-USD', '20', 0.05, 0.025, 190_000)]);
  });
  after(() => h.close());

  const ROWS = 2500;
  const MANY = `WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r LIMIT ${ROWS})
    SELECT x, 'row ' || x AS label, CASE WHEN x % 2 = 1 THEN NULL ELSE x * 0.5 END AS half, x'00ff' AS blob FROM r`;
  const expected = Array.from({ length: ROWS }, (_, index) => {
    const x = index + 1;
    return { x, label: `row ${x}`, half: x % 2 === 1 ? null : x * 0.5, blob: '00ff' };
  });

  it('every format carries every row of a many-batch answer, as before', async () => {
    const json = await cli(h.dbPath, ['query', MANY, '--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), expected);
    assert.ok(json.stdout.startsWith('[\n{"x":1,') && json.stdout.endsWith('}\n]\n'));

    const ndjson = await cli(h.dbPath, ['query', MANY, '--format', 'ndjson']);
    assert.deepEqual(
      ndjson.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line)),
      expected,
    );

    const csv = await cli(h.dbPath, ['query', MANY, '--format', 'csv']);
    const lines = csv.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'x,label,half,blob');
    assert.deepEqual(
      lines.slice(1),
      expected.map((row) => `${row.x},row ${row.x},${row.half ?? ''},00ff`),
    );

    const table = await cli(h.dbPath, ['query', MANY], { tty: true });
    assert.equal(table.code, 0, table.stderr);
    const body = table.stdout.split('\n').filter((line) => /^\s*\d+\s+row \d/.test(line));
    assert.equal(body.length, ROWS);
    assert.match(body[1]!, /^\s+2 {2}row 2\s+1 {2}00ff$/);
    assert.match(table.stdout, /Last successful sweep: 2026-10-01T00:00:00.000Z/);

    const empty = await cli(h.dbPath, ['query', 'SELECT 1 AS x WHERE 0', '--format', 'json']);
    assert.equal(empty.stdout, '[]\n');
  });

  it('rows larger than a batch arrive whole', async () => {
    const result = await cli(h.dbPath, [
      'query',
      `WITH v(x) AS (VALUES (1), (2), (3)) SELECT x, printf('%.*c', 300000, 'a') AS wide FROM v`,
      '--format',
      'ndjson',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const rows = result.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { x: number; wide: string });
    assert.deepEqual(
      rows.map((row) => [row.x, row.wide.length]),
      [
        [1, 300_000],
        [2, 300_000],
        [3, 300_000],
      ],
    );
  });

  it('an endless answer piped into `head` ends when head does, with exit 0', { timeout: 120_000 }, async () => {
    const endless = 'WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r';
    const shell = spawn(
      'bash',
      [
        '-c',
        '"$0" "$1" query "$2" --format ndjson --timeout 10m | head -n 3; echo "cli=${PIPESTATUS[0]}"',
        process.execPath,
        CLI,
        endless,
      ],
      {
        env: { ...process.env, TIERWATCH_DB: h.dbPath, LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    shell.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    shell.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
    const [code] = await once(shell, 'exit');
    assert.equal(code, 0);
    assert.equal(out, '{"x":1}\n{"x":2}\n{"x":3}\ncli=0\n', err);
  });

  it(
    'a stdout nobody reads pauses the statement instead of filling memory; reading again finishes it',
    { timeout: 180_000 },
    async (t) => {
      const total = 100_000;
      const sql = `WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r LIMIT ${total}) SELECT x, printf('%.*c', 200, 'v') AS pad FROM r`;
      const child = spawn(process.execPath, [CLI, 'query', sql, '--format', 'ndjson', '--timeout', '10m'], {
        env: { ...process.env, TIERWATCH_DB: h.dbPath, LOG_LEVEL: 'debug' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = once(child, 'exit');
      let stderr = '';
      const started = new Promise<number>((resolve) => {
        child.stderr.setEncoding('utf8').on('data', (text: string) => {
          stderr += text;
          const match = /"query_pid":(\d+)/.exec(stderr);
          if (match) resolve(Number(match[1]));
        });
      });
      const queryPid = await started;
      // stdout is not read: the pipe fills, the CLI stops asking for batches, the statement waits.
      // Nothing signals "idle", so watch both processes' CPU time until it stops moving.
      const cpu = (pid: number): number => {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(fields[11]) + Number(fields[12]);
      };
      let previous = -1;
      let still = 0;
      const deadline = Date.now() + 90_000;
      while (still < 3) {
        assert.ok(Date.now() < deadline, 'the processes never went idle');
        const now = cpu(child.pid!) + cpu(queryPid);
        still = now === previous ? still + 1 : 0;
        previous = now;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      assert.ok(running(queryPid), 'the statement is paused, not finished: it has not sent every row ahead');
      const rss = (pid: number): number =>
        Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
      const [cliRss, queryRss] = [rss(child.pid!), rss(queryPid)];
      // The answer is ~21 MB of NDJSON; held whole it would sit in one of the two processes.
      assert.ok(cliRss < 150e6 && queryRss < 150e6, `RSS while paused: CLI ${cliRss} B, statement ${queryRss} B`);

      let lines = 0;
      let last = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        const parts = (last + text).split('\n');
        last = parts.pop()!;
        lines += parts.length;
      });
      const [code] = await exited;
      assert.equal(code, 0, stderr);
      assert.equal(lines, total);
      t.diagnostic(
        `RSS while stdout was not read: CLI ${(cliRss / 1e6).toFixed(0)} MB, statement ${(queryRss / 1e6).toFixed(0)} MB (answer ~${((total * 220) / 1e6).toFixed(0)} MB)`,
      );
    },
  );
});
