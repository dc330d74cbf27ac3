/**
 * A disk that fills up, simulated without mounting anything: SQLite's `max_page_count` on the
 * writer's connection (in process), and a file size limit (`ulimit -f`) on a child `collect`.
 * The sweep fails cleanly with DISK_FULL, its ledger row says so, the history stays readable
 * and unchanged, and the next sweep once there is room records exactly the true changes. When not
 * even the ledger can be written, the failure still surfaces (a rejected sweep, exit 1 with a
 * message naming the problem) instead of being swallowed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sweepAccount } from '../src/collect/sweep.ts';
import { openSession } from '../src/qfex/client.ts';
import { openDatabase } from '../src/store/db.ts';
import { startHarness, type Harness } from './helpers/harness.ts';
import {
  historyDump,
  historyDumpOf,
  integrityOf,
  ledger,
  netChanges,
  recordedChanges,
  spawnCli,
} from './helpers/faults.ts';

function listMany(h: Harness, prefix: string, symbols: number): void {
  for (let i = 0; i < symbols; i++) h.sim.listSymbol('primary', `${prefix}${i}-USD`, { levels: [1, 2, 3, 5, 10] });
}

test('max_page_count reached during the commit: DISK_FULL in the ledger, history unchanged and readable, then recovery', async () => {
  const h = await startHarness();
  try {
    const config = h.config();
    assert.ok((await sweepAccount(config, 'primary', h)).ok);
    const recorded = h.sim.tiers();
    listMany(h, 'FULL', 60);
    const before = historyDump(h.db.sqlite);
    const pages = Number(h.db.sqlite.pragma('page_count', { simple: true }));
    h.db.sqlite.pragma(`max_page_count = ${pages}`);

    const failed = await sweepAccount(config, 'primary', h);
    assert.equal(failed.ok, false);
    if (!failed.ok) {
      assert.equal(failed.error.code, 'DISK_FULL');
      assert.match(failed.error.message, /full/);
    }
    const run = ledger(h.db.sqlite).at(-1)!;
    assert.deepEqual([run.status, run.error_code], ['failed', 'DISK_FULL']);
    assert.deepEqual(historyDump(h.db.sqlite), before, 'the history is unchanged');
    assert.deepEqual(historyDumpOf(h.dbPath), before, 'and readable from another connection');

    h.db.sqlite.pragma('max_page_count = 1073741823');
    const next = await sweepAccount(config, 'primary', h);
    assert.ok(next.ok);
    assert.deepEqual(recordedChanges(next.changes), netChanges(recorded, h.sim.tiers()));
  } finally {
    await h.close();
  }
});

test('when not even the ledger can be written, the sweep rejects with DB_WRITE_FAILED instead of hiding it', async () => {
  const h = await startHarness();
  try {
    const config = h.config();
    assert.ok((await sweepAccount(config, 'primary', h)).ok);
    h.sim.editTier('primary', 'META-USD', '20', { max_notional: 777 });
    const before = historyDump(h.db.sqlite);
    // Once the run is started, the database refuses every write (as a full or read-only disk would).
    const deps = {
      ...h,
      openSession: (options: Parameters<typeof openSession>[0]) => {
        h.db.sqlite.pragma('query_only = ON');
        return openSession(options);
      },
    };
    await assert.rejects(sweepAccount(config, 'primary', deps), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'DB_WRITE_FAILED');
      assert.match(error.message, /recording the failure of run \d+/);
      return true;
    });
    h.db.sqlite.pragma('query_only = OFF');
    assert.deepEqual(historyDump(h.db.sqlite), before);
    assert.equal(ledger(h.db.sqlite).at(-1)!.status, 'running', 'left for the next start to mark abandoned');
  } finally {
    await h.close();
  }
});

test('a file size limit (ulimit -f) on a child collect: exit 1, DISK_FULL in the ledger, integrity ok; too small to open: exit 1, DISK_FULL', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    const env = { ...h.env, LOG_LEVEL: 'info' };
    const first = spawnCli(['collect'], env);
    assert.equal(await first.exited, 0, first.stderr());
    const recorded = h.sim.tiers();
    listMany(h, 'BIG', 300);
    const before = historyDumpOf(h.dbPath);

    // 40 KiB per file: the sweep's WAL frames for 1,500 new tiers do not fit.
    const limited = spawnCli(['collect'], env, { shell: 'ulimit -f 40' });
    assert.equal(await limited.exited, 1, limited.stderr());
    assert.match(limited.stderr(), /sweep failed: storing run \d+ failed: the file size limit \(ulimit -f/);
    assert.equal(integrityOf(h.dbPath), 'ok');
    assert.deepEqual(historyDumpOf(h.dbPath), before);
    const db = openDatabase(h.dbPath, { readonly: true });
    try {
      const run = ledger(db.sqlite).at(-1)!;
      assert.deepEqual([run.status, run.error_code], ['failed', 'DISK_FULL']);
    } finally {
      db.close();
    }

    // 8 KiB: not even the database can be opened for writing. No ledger row is possible; the
    // process says why and exits 1.
    const tiny = spawnCli(['collect'], env, { shell: 'ulimit -f 8' });
    assert.equal(await tiny.exited, 1);
    assert.match(
      tiny.stderr(),
      /^tierwatch collect: .* failed: the file size limit \(ulimit -f, 8192 bytes\) is reached/m,
    );

    const next = spawnCli(['collect'], env);
    assert.equal(await next.exited, 0, next.stderr());
    const after = openDatabase(h.dbPath, { readonly: true });
    try {
      const run = ledger(after.sqlite).at(-1)!;
      assert.equal(run.status, 'ok');
      const changes = after.sqlite
        .prepare('SELECT change, symbol, leverage FROM tier_changes WHERE run_id = ?')
        .all(run.run_id) as never;
      assert.deepEqual(recordedChanges(changes), netChanges(recorded, h.sim.tiers()));
    } finally {
      after.close();
    }
  } finally {
    await h.close();
  }
});
