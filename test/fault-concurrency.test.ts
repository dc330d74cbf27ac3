/**
 * Readers and writers at the same time. A reader (another process, through the read-only query
 * commands) is never blocked by a sweep's write transaction and never sees half of it; two writer
 * processes racing for the same database never interleave: one is refused with DB_LOCKED naming
 * the holder, and the history holds one run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sweepAccount } from '../src/collect/sweep.ts';
import { openDatabase } from '../src/store/db.ts';
import { startHarness } from './helpers/harness.ts';
import { historyViolations, ledger, spawnCli } from './helpers/faults.ts';

test('a read-only query in another process answers while a sweep holds its write transaction, and sees none of it', async () => {
  const h = await startHarness();
  try {
    const config = h.config();
    const first = await sweepAccount(config, 'primary', h);
    assert.ok(first.ok);
    h.sim.editTier('primary', 'META-USD', '20', { max_notional: 4242 });

    // A write transaction held open across an await, as a long commit holds it: the run ledger
    // gains a row and every current version a bogus value, none of it committed yet.
    h.db.sqlite.exec('BEGIN IMMEDIATE');
    h.db.sqlite
      .prepare(
        `INSERT INTO run_ledger (account_id, endpoint, public_key, started_at, status) VALUES ('primary', 'x', NULL, '2030-01-01T00:00:00.000Z', 'running')`,
      )
      .run();
    h.db.sqlite.prepare(`UPDATE tier_version SET max_notional = -1 WHERE valid_to IS NULL`).run();
    assert.ok(h.db.sqlite.inTransaction);

    // "Not blocked" is proved by ordering, not by a stopwatch (a loaded machine makes any process
    // slow): the write transaction stays open until both readers have answered, so a reader that
    // waited for the write lock could only have given up with DB_LOCKED after the busy timeout —
    // it cannot succeed before the ROLLBACK below, because the ROLLBACK waits for it.
    const events: string[] = [];
    const readerDone = (name: string) => (code: number | string) => {
      events.push(
        `${name} exited ${code} ${h.db.sqlite.inTransaction ? 'while the write transaction was open' : 'after the write transaction'}`,
      );
      return code;
    };
    const reader = spawnCli(['changes', '--include-baseline', '--format', 'json'], { ...h.env, LOG_LEVEL: 'warn' });
    const runsReader = spawnCli(['runs', '--format', 'json'], { ...h.env, LOG_LEVEL: 'warn' });
    const [code, runsCode] = await Promise.all([
      reader.exited.then(readerDone('changes')),
      runsReader.exited.then(readerDone('runs')),
    ]);
    events.push('write transaction rolled back');
    h.db.sqlite.exec('ROLLBACK');

    assert.equal(code, 0, reader.stderr());
    assert.equal(runsCode, 0, runsReader.stderr());
    assert.deepEqual(
      [...events.slice(0, 2)].sort().concat(events.slice(2)),
      [
        'changes exited 0 while the write transaction was open',
        'runs exited 0 while the write transaction was open',
        'write transaction rolled back',
      ],
      'both readers answered while the sweep still held its write transaction',
    );
    for (const child of [reader, runsReader]) {
      assert.doesNotMatch(child.stderr(), /lock|busy/i, 'no reader waited for or reported the write lock');
    }
    const changes = JSON.parse(reader.stdout()) as Array<{ new_max_notional: number | null }>;
    assert.equal(changes.length, h.sim.tiers().length, 'the committed first sweep (the baseline), every tier added');
    assert.ok(
      changes.every((change) => change.new_max_notional !== -1),
      'nothing uncommitted is visible',
    );
    const runs = JSON.parse(runsReader.stdout()) as Array<{ run_id: number; status: string }>;
    assert.deepEqual(
      runs.map((run) => [run.run_id, run.status]),
      [[first.runId, 'ok']],
    );

    // And the sweep still commits after the readers were there.
    const second = await sweepAccount(config, 'primary', h);
    assert.ok(second.ok && second.changes.length === 1);
  } finally {
    await h.close();
  }
});

test('two collect processes racing for one database: one is refused with DB_LOCKED naming the other, the history holds one run', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    // The first to take the lock keeps it for at least 2.5 s (its first page is slow), so the two
    // processes overlap whatever their start-up order.
    h.sim.inject({ kind: 'delay_page', page: 1, ms: 2500 });
    const env = { ...h.env, LOG_LEVEL: 'info' };
    const a = spawnCli(['collect'], env);
    const b = spawnCli(['collect'], env);
    const codes = await Promise.all([a.exited, b.exited]);
    assert.deepEqual([...codes].sort(), [0, 1], `exit codes ${JSON.stringify(codes)}:\n${a.stderr()}\n${b.stderr()}`);
    const refused = codes[0] === 1 ? a : b;
    const winner = codes[0] === 1 ? b : a;
    assert.match(refused.stderr(), new RegExp(`being written by \`tierwatch collect\` \\(pid ${winner.child.pid} `));
    const db = openDatabase(h.dbPath, { readonly: true });
    try {
      assert.deepEqual(
        ledger(db.sqlite).map((run) => run.status),
        ['ok'],
        'the refused process wrote nothing, not even a ledger row',
      );
      assert.deepEqual(historyViolations(db.sqlite), []);
      const versions = db.sqlite.prepare('SELECT count(*) AS n FROM tier_versions').get() as { n: number };
      assert.equal(versions.n, h.sim.tiers().length, 'no duplicated versions');
    } finally {
      db.close();
    }
  } finally {
    await h.close();
  }
});
