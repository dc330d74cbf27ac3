/**
 * Time you can trust (issue 10), through the CLI against the simulator: a sweep observed before the
 * account's last one fails as CLOCK_BEHIND and says by how much; a last success in the future is
 * unhealthy and stale; `tierwatch rewind` is the way back from a history stamped in the future.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Receiver } from './alerts-fixture.ts';
import { PassThrough } from 'node:stream';
import { LogCapture, runCliCaptured, startHarness, type Harness } from './helpers/harness.ts';
import { runCli } from '../src/program.ts';
import { openDatabase } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { acquireWriterLock } from '../src/store/writer-lock.ts';
import type { Tier } from '../src/history/tier.ts';

interface RunRow {
  run_id: number;
  status: string;
  observed_at: string | null;
  error_code: string | null;
  error_message: string | null;
}

/** The internal versions with their links (epoch ms, prev_version_id), which the views do not show. */
function links(h: Harness): unknown[] {
  const db = openDatabase(h.dbPath, { readonly: true });
  try {
    return db.sqlite
      .prepare('SELECT version_id, prev_version_id, valid_from, valid_to, run_id FROM tier_version ORDER BY version_id')
      .all();
  } finally {
    db.close();
  }
}

/** The history as the public views show it (a fresh read-only connection). */
function read(h: Harness): {
  runs: RunRow[];
  current: unknown[];
  versions: unknown[];
  changes: Array<{ run_id: number }>;
} {
  const db = openDatabase(h.dbPath, { readonly: true });
  try {
    return {
      runs: db.sqlite
        .prepare('SELECT run_id, status, observed_at, error_code, error_message FROM runs ORDER BY run_id')
        .all() as RunRow[],
      current: db.sqlite.prepare('SELECT * FROM tiers_current ORDER BY account_id, symbol, leverage').all(),
      versions: db.sqlite
        .prepare('SELECT * FROM tier_versions ORDER BY account_id, symbol, leverage, valid_from')
        .all(),
      changes: db.sqlite.prepare('SELECT * FROM tier_changes ORDER BY run_id, symbol, leverage').all() as Array<{
        run_id: number;
      }>,
    };
  } finally {
    db.close();
  }
}

/**
 * Stores one sweep observed at `at` (as a process with a clock that ran ahead would have), with the
 * simulator's tiers changed: the first edited, the second removed, one added. Returns its run id.
 */
function sweepAt(h: Harness, at: Date): number {
  const db = openDatabase(h.dbPath);
  try {
    const store = new HistoryStore(db);
    const tiers: Tier[] = h.sim.tiers().map((tier) => ({ ...tier, exchange_id: tier.id }));
    tiers[0] = { ...tiers[0]!, max_notional: tiers[0]!.max_notional / 2 };
    tiers.splice(1, 1);
    tiers.push({
      symbol: 'ZZZ-USD',
      leverage: '5',
      initial_margin: 0.2,
      maintenance_margin: 0.1,
      max_notional: 1000,
      exchange_id: 'zzz',
    });
    const runId = store.startRun({ accountId: 'primary', endpoint: h.sim.url, publicKey: null, startedAt: at });
    store.commitSweep(runId, {
      accountId: 'primary',
      observedAt: at,
      finishedAt: at,
      tiers,
      pages: 1,
      maxRemovalRatio: 1,
    });
    return runId;
  } finally {
    db.close();
  }
}

test("a sweep observed before the account's last one fails as CLOCK_BEHIND and says by how much", async () => {
  const h = await startHarness();
  try {
    h.db.close();
    assert.equal((await runCliCaptured(['collect'], { env: h.env })).code, 0);
    sweepAt(h, new Date(Date.now() + 3_600_000));

    const result = await runCliCaptured(['collect'], { env: h.env });
    assert.equal(result.code, 1);
    const last = read(h).runs.at(-1)!;
    assert.equal(last.status, 'failed');
    assert.equal(last.error_code, 'CLOCK_BEHIND');
    // One hour ahead, less the seconds the sweep took: "59 min 5x.x s before".
    assert.match(
      last.error_message!,
      /observed at .*, (5\d min( [\d.]+ s)?|1 h) before the account's last observation/,
    );
    assert.match(last.error_message!, /tierwatch rewind --after/);
  } finally {
    await h.close();
  }
});

test('a last success in the future is unhealthy, not healthy', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    sweepAt(h, new Date('2051-06-01T00:00:00.000Z'));
    const result = await runCliCaptured(['health', '--max-age', '1h'], { env: h.env });
    assert.equal(result.code, 1, result.stdout);
    assert.match(
      result.stdout,
      /^unhealthy: account primary: last successful sweep at 2051-06-01T00:00:00\.000Z is \d+ s in the future/,
    );
  } finally {
    await h.close();
  }
});

test('the daemon fires the stale alert, and /healthz says unhealthy, when the last success is in the future', async () => {
  const h = await startHarness();
  const receiver = new Receiver();
  await receiver.listen();
  const stop = new AbortController();
  try {
    h.db.close();
    sweepAt(h, new Date('2051-06-01T00:00:00.000Z'));
    const logs = new LogCapture();
    const daemon = runCli(['run'], {
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      env: {
        ...h.env,
        TIERWATCH_WEBHOOK_URL: receiver.url,
        TIERWATCH_SCHEDULE: '0 0 1 1 *',
        TIERWATCH_HEALTH_MAX_AGE: '1h',
        TIERWATCH_HTTP_PORT: '0',
        TIERWATCH_HTTP_HOST: '127.0.0.1',
      },
      stdoutIsTTY: false,
      signal: stop.signal,
      logDestination: logs,
    });
    // The sweep at start fails (CLOCK_BEHIND); the check after it finds the future last success.
    const isStale = () => receiver.requests.some((request) => request.headers['x-tierwatch-event'] === 'stale');
    const deadline = Date.now() + 60_000;
    while (
      !(isStale() && logs.lines.some((line) => line.msg === 'serving /healthz and /metrics')) &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const listening = logs.lines.find((line) => line.msg === 'serving /healthz and /metrics');
    const healthz = listening === undefined ? null : await fetch(`http://127.0.0.1:${String(listening.port)}/healthz`);
    stop.abort();
    const code = await daemon;
    const stale = receiver.requests.find((request) => request.headers['x-tierwatch-event'] === 'stale');
    assert.ok(
      stale,
      `a stale notification was sent; got ${receiver.requests.map((request) => request.headers['x-tierwatch-event']).join(', ')}`,
    );
    assert.match(JSON.parse(stale.body).reason, /2051-06-01T00:00:00\.000Z is \d+ s in the future/);
    assert.ok(healthz !== null, 'the daemon served /healthz');
    assert.equal(healthz.status, 503);
    assert.match(
      await healthz.text(),
      /^unhealthy: account primary: last successful sweep at 2051-06-01T00:00:00\.000Z is \d+ s in the future/,
    );
    assert.equal(code, 0);
    assert.equal(read(h).runs.at(-1)!.error_code, 'CLOCK_BEHIND');
  } finally {
    stop.abort();
    await receiver.close();
    await h.close();
  }
});

test('rewind discards the runs stamped in the future, restores the history, and collection resumes', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    assert.equal((await runCliCaptured(['collect'], { env: h.env })).code, 0);
    const before = read(h);
    const linksBefore = links(h);
    const future = sweepAt(h, new Date('2051-06-01T00:00:00.000Z'));
    assert.equal((await runCliCaptured(['collect'], { env: h.env })).code, 1, 'stuck: CLOCK_BEHIND');
    assert.notDeepEqual(read(h).current, before.current);

    const dry = await runCliCaptured(['rewind', '--after', 'now', '--dry-run'], { env: h.env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      new RegExp(
        `^would discard run ${future}: account primary, observed at 2051-06-01T00:00:00\\.000Z, \\d+ tiers, 3 changes$`,
        'm',
      ),
    );
    assert.equal(read(h).runs.find((run) => run.run_id === future)!.status, 'ok', 'a dry run changes nothing');

    const rewound = await runCliCaptured(['rewind', '--after', 'now'], { env: h.env });
    assert.equal(rewound.code, 0, rewound.stderr);
    assert.match(rewound.stdout, new RegExp(`^discarded run ${future}: account primary`, 'm'));
    assert.match(
      rewound.stdout,
      /1 run\(s\) observed after .* discarded: 3 change\(s\) and 2 version\(s\) deleted, 2 version\(s\) reopened/,
    );

    const after = read(h);
    assert.deepEqual(after.current, before.current, 'the current tiers are those before the future run');
    assert.deepEqual(after.versions, before.versions, 'and so is every version');
    assert.deepEqual(
      links(h),
      linksBefore,
      'the internal rows too: no version links to a deleted one, none reopened keeps a successor',
    );
    assert.equal(after.changes.filter((change) => change.run_id === future).length, 0);
    const ledger = after.runs.find((run) => run.run_id === future)!;
    assert.equal(ledger.status, 'failed');
    assert.equal(ledger.error_code, 'REWOUND');
    assert.match(ledger.error_message!, /discarded at .* by `tierwatch rewind --after \d{4}-/);
    assert.equal(ledger.observed_at, '2051-06-01T00:00:00.000Z', 'the ledger still says what the run saw');

    assert.equal((await runCliCaptured(['collect'], { env: h.env })).code, 0, 'collection resumes');
    assert.equal((await runCliCaptured(['health'], { env: h.env })).code, 0);

    // Runs in the past are real history: discarded only with --force.
    const past = await runCliCaptured(['rewind', '--after', '1h'], { env: h.env });
    assert.equal(past.code, 2);
    assert.match(
      past.stderr,
      /2 of the 2 run\(s\) observed after .* are not in the future .* add --force to discard them too; nothing was changed/,
    );
    assert.equal(read(h).runs.filter((run) => run.status === 'ok').length, 2);
    const first = before.runs[0]!.run_id;
    const forced = await runCliCaptured(['rewind', '--after', `run:${first}`, '--force'], { env: h.env });
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(
      forced.stdout,
      /^1 run\(s\) observed after .* discarded: 0 change\(s\) and 0 version\(s\) deleted, 0 version\(s\) reopened$/m,
    );
    assert.deepEqual(read(h).current, before.current);

    const nothing = await runCliCaptured(['rewind', '--after', 'now'], { env: h.env });
    assert.equal(nothing.code, 2);
    assert.match(
      nothing.stderr,
      /Nothing to discard: no successful run of any account was observed after .* \(the last one was observed at /,
    );
    const invalid = await runCliCaptured(['rewind', '--after', '2026-02-30'], { env: h.env });
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /`--after`.*"2026-02-30" \(no such date or time\)/);
    assert.equal((await runCliCaptured(['rewind'], { env: h.env })).code, 2, '--after is required');
    const other = await runCliCaptured(['rewind', '--after', '1h', '--account', 'sub-1'], { env: h.env });
    assert.equal(other.code, 2);
    assert.match(other.stderr, /no successful run of account sub-1 was observed after .* \(there is none at all\)/);
  } finally {
    await h.close();
  }
});

test('rewind takes the writer lock: refused while another process writes', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    assert.equal((await runCliCaptured(['collect'], { env: h.env })).code, 0);
    sweepAt(h, new Date('2051-06-01T00:00:00.000Z'));
    const lock = acquireWriterLock(h.dbPath, 'tierwatch run');
    try {
      const result = await runCliCaptured(['rewind', '--after', 'now'], { env: h.env });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /tierwatch run/);
    } finally {
      lock.release();
    }
    assert.equal(read(h).runs.filter((run) => run.error_code === 'REWOUND').length, 0, 'nothing was discarded');
  } finally {
    await h.close();
  }
});
