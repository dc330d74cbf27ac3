/**
 * The database and the operator's slips (issue 11), through the CLI against real files: nothing is
 * lost by a slip (demo over a real history, a database deleted under the daemon, a refused writer,
 * another program's SQLite file), migrations say the right words under the writer lock, a 0.1.0
 * history still opens, and a run never stays `running` after a clean stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { sweepAccount } from '../src/collect/sweep.ts';
import { runCli } from '../src/program.ts';
import { openDatabase } from '../src/store/db.ts';
import { acquireWriterLock } from '../src/store/writer-lock.ts';
import { LogCapture, runCliCaptured, startHarness } from './helpers/harness.ts';
import { spawnCli } from './helpers/faults.ts';
import { startHttpDaemon, waitForLogLine } from './helpers/http-daemon.ts';

const FIXTURE_010 = path.resolve(import.meta.dirname, 'fixtures', 'tierwatch-0.1.0.db');

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function ledgerStatuses(dbPath: string): string[] {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    return db.sqlite.prepare<[], string>('SELECT status FROM runs ORDER BY run_id').pluck().all();
  } finally {
    db.close();
  }
}

test(
  'demo refuses (exit 2) a --db holding a history it did not create and says what is there; --force replaces it; its own history it replaces',
  { timeout: 120_000 },
  async () => {
    const h = await startHarness();
    try {
      assert.ok((await sweepAccount(h.config(), 'primary', h)).ok);
      h.db.close();
      const before = sha256(h.dbPath);

      const refused = await runCliCaptured(['demo', '--db', h.dbPath, '--duration', '2s'], {
        env: { LOG_LEVEL: 'silent' },
      });
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        refused.stderr,
        /holds a tierwatch history the demo did not create \(1 run\(s\) of ws:\/\/127\.0\.0\.1:\d+\/?, last sweep \d{4}-\d\d-\d\dT/,
      );
      assert.match(refused.stderr, /--force/);
      assert.equal(sha256(h.dbPath), before, 'the history is untouched');

      const forced = await runCliCaptured(['demo', '--db', h.dbPath, '--duration', '2s', '--force'], {
        env: { LOG_LEVEL: 'silent' },
      });
      assert.equal(forced.code, 0, forced.stderr);
      const again = await runCliCaptured(['demo', '--db', h.dbPath, '--duration', '2s'], {
        env: { LOG_LEVEL: 'silent' },
      });
      assert.equal(again.code, 0, `the demo replaces its own history without --force: ${again.stderr}`);
    } finally {
      await h.close().catch(() => undefined);
    }
  },
);

test('a refused writer (DB_LOCKED) creates nothing: no database file, no migration', { timeout: 60_000 }, async () => {
  const h = await startHarness();
  try {
    const dbPath = path.join(h.dir, 'fresh', 'history.db');
    fs.mkdirSync(path.dirname(dbPath));
    const lock = acquireWriterLock(dbPath, 'tierwatch run (test holder)');
    try {
      const refused = spawnCli(['collect'], { ...h.env, TIERWATCH_DB: dbPath, LOG_LEVEL: 'warn' });
      assert.equal(await refused.exited, 1, refused.stderr());
      assert.match(refused.stderr(), /is being written by `tierwatch run \(test holder\)` \(pid \d+ on /);
      assert.deepEqual(
        fs.readdirSync(path.dirname(dbPath)).sort(),
        ['history.db.lock'],
        "only the holder's lock file is there",
      );
    } finally {
      lock.release();
    }
  } finally {
    await h.close();
  }
});

test(
  "another program's SQLite file is refused with exit 2 (DB_FOREIGN) by writers and readers, and left byte-for-byte untouched",
  { timeout: 60_000 },
  async () => {
    const h = await startHarness();
    try {
      const foreign = path.join(h.dir, 'crm.sqlite');
      const other = new Database(foreign);
      other.exec(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('Ada'), ('Grace');",
      );
      other.close();
      const before = sha256(foreign);

      for (const args of [['collect'], ['migrate'], ['runs', '--format', 'json'], ['snapshot', '--format', 'json']]) {
        const result = await runCliCaptured(args, { env: { ...h.env, TIERWATCH_DB: foreign, LOG_LEVEL: 'silent' } });
        assert.equal(result.code, 2, `${args[0]}: ${result.stderr}`);
        assert.match(result.stderr, /is a SQLite database of another program .* leaves it untouched/, args[0]);
      }
      assert.equal(sha256(foreign), before, 'not one byte changed (no tables, not switched to WAL)');
      assert.deepEqual(
        fs.readdirSync(h.dir).filter((name) => name.startsWith('crm')),
        ['crm.sqlite'],
        'no -wal, -shm or .lock beside it',
      );
    } finally {
      await h.close();
    }
  },
);

test(
  "a first start seen half-way by a second one (only drizzle's empty migrations table) is not another program's file",
  { timeout: 60_000 },
  async () => {
    const h = await startHarness();
    try {
      // What a second `migrate` can find while the first is applying its migrations: drizzle's migrator
      // creates its table before the transaction that fills it. Seen under load as a DB_FOREIGN exit 2.
      const dbPath = path.join(h.dir, 'half.db');
      const half = new Database(dbPath);
      half.exec('CREATE TABLE __drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)');
      half.close();
      const migrated = await runCliCaptured(['migrate', '--db', dbPath], { env: { LOG_LEVEL: 'silent' } });
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.match(migrated.stdout, /applied \d+ migrations/);
    } finally {
      await h.close();
    }
  },
);

test(
  'the daemon stops with DB_REPLACED (exit 1) when its database file is deleted, before the next sweep',
  { timeout: 90_000 },
  async () => {
    const h = await startHarness();
    try {
      const dbPath = path.join(h.dir, 'daemon.db');
      const daemon = spawnCli(['run'], {
        ...h.env,
        TIERWATCH_DB: dbPath,
        TIERWATCH_SCHEDULE: '*/2 * * * * *',
        LOG_LEVEL: 'info',
      });
      await daemon.waitFor(/sweep ok/, 30_000);
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${dbPath}${suffix}`, { force: true });
      assert.equal(await daemon.exited, 1, daemon.stderr());
      // Off a terminal the daemon's last word is a JSON line (issue 13), carrying the code and the message.
      const last = daemon
        .stderr()
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as { code?: string; msg: string })
        .at(-1)!;
      assert.equal(last.code, 'DB_REPLACED');
      assert.match(last.msg, /^tierwatch run: The database .*daemon\.db was deleted while tierwatch had it open/);
    } finally {
      await h.close();
    }
  },
);

test(
  '/healthz says unhealthy (503) as soon as the database file is replaced, before any sweep notices',
  { timeout: 60_000 },
  async () => {
    const h = await startHarness();
    try {
      const dbPath = path.join(h.dir, 'daemon.db');
      const daemon = await startHttpDaemon(h, { TIERWATCH_DB: dbPath });
      try {
        const healthz = `${daemon.base}/healthz`;
        assert.equal((await fetch(healthz)).status, 200);
        // Another file moved into its place (a restore gone wrong): same path, another inode.
        fs.copyFileSync(dbPath, `${dbPath}.copy`);
        fs.renameSync(`${dbPath}.copy`, dbPath);
        const after = await fetch(healthz);
        assert.equal(after.status, 503);
        assert.match(await after.text(), /^unhealthy: The database .* was replaced by another file/);
      } finally {
        await daemon.stop();
      }
    } finally {
      await h.close();
    }
  },
);

test(
  'migrate says what it applied, "up to date" only when nothing was pending, and needs the writer lock',
  { timeout: 60_000 },
  async () => {
    const h = await startHarness();
    try {
      const dbPath = path.join(h.dir, 'new.db');
      const journal = JSON.parse(
        fs.readFileSync(path.resolve(import.meta.dirname, '..', 'migrations', 'meta', '_journal.json'), 'utf8'),
      ) as { entries: unknown[] };
      const first = await runCliCaptured(['migrate', '--db', dbPath], { env: { LOG_LEVEL: 'silent' } });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`applied ${journal.entries.length} migrations`));
      assert.doesNotMatch(first.stdout, /is up to date \(nothing/);
      const second = await runCliCaptured(['migrate', '--db', dbPath], { env: { LOG_LEVEL: 'silent' } });
      assert.match(second.stdout, /is up to date \(nothing to apply\)/);

      const lock = acquireWriterLock(dbPath, 'tierwatch run (test holder)');
      try {
        const refused = spawnCli(['migrate', '--db', dbPath], { LOG_LEVEL: 'warn' });
        assert.equal(await refused.exited, 1, refused.stderr());
        assert.match(refused.stderr(), /being written by `tierwatch run \(test holder\)`/);
      } finally {
        lock.release();
      }
    } finally {
      await h.close();
    }
  },
);

test(
  'two first starts at once: one migrates, the other succeeds after it or is refused with DB_LOCKED naming it, never INTERNAL',
  { timeout: 120_000 },
  async () => {
    const h = await startHarness();
    try {
      for (let round = 0; round < 3; round++) {
        const dbPath = path.join(h.dir, `race-${round}.db`);
        const racers = [
          spawnCli(['migrate', '--db', dbPath], { LOG_LEVEL: 'warn' }),
          spawnCli(['migrate', '--db', dbPath], { LOG_LEVEL: 'warn' }),
        ];
        const codes = await Promise.all(racers.map((racer) => racer.exited));
        assert.ok(
          codes.includes(0),
          `round ${round}: one succeeds: ${racers.map((racer) => racer.stderr()).join(' | ')}`,
        );
        for (const [index, racer] of racers.entries()) {
          assert.doesNotMatch(racer.stderr(), /this is a bug|already exists/, `round ${round}`);
          if (codes[index] !== 0) {
            assert.equal(codes[index], 1);
            assert.match(racer.stderr(), /is being written by `tierwatch migrate` \(pid \d+/);
          }
        }
        const applied = racers.filter((racer) => /applied \d+ migrations/.test(racer.stdout()));
        assert.equal(applied.length, 1, `round ${round}: exactly one applied the migrations`);
      }
    } finally {
      await h.close();
    }
  },
);

test(
  "a 0.1.0 database (migrated by its migration child) opens: drizzle's migrator sees its migrations as applied",
  { timeout: 60_000 },
  async () => {
    const h = await startHarness();
    try {
      const dbPath = path.join(h.dir, 'old.db');
      fs.copyFileSync(FIXTURE_010, dbPath);
      const migrated = await runCliCaptured(['migrate', '--db', dbPath], { env: { LOG_LEVEL: 'silent' } });
      assert.equal(migrated.code, 0, migrated.stderr);
      // Only migrations newer than 0.1.0's three may be applied; none of those it already has.
      const journal = JSON.parse(
        fs.readFileSync(path.resolve(import.meta.dirname, '..', 'migrations', 'meta', '_journal.json'), 'utf8'),
      ) as { entries: unknown[] };
      const newer = journal.entries.length - 3;
      assert.match(
        migrated.stdout,
        newer === 0 ? /up to date \(nothing to apply\)/ : new RegExp(`applied ${newer} migration`),
      );
      const runs = await runCliCaptured(['runs', '--db', dbPath, '--format', 'json'], { env: {} });
      assert.equal(runs.code, 0, runs.stderr);
      assert.equal((JSON.parse(runs.stdout) as unknown[]).length, 4);
      // Every one of 0.1.0's 68 change rows is still there; the first sweep's are the baseline now,
      // which `changes` shows only when asked (5 rows are later changes).
      const changes = await runCliCaptured(['changes', '--include-baseline', '--db', dbPath, '--format', 'json'], {
        env: {},
      });
      assert.equal(changes.code, 0, changes.stderr);
      assert.equal((JSON.parse(changes.stdout) as unknown[]).length, 68);
      const news = await runCliCaptured(['changes', '--db', dbPath, '--format', 'json'], { env: {} });
      assert.equal(news.code, 0, news.stderr);
      assert.equal((JSON.parse(news.stdout) as unknown[]).length, 5);
    } finally {
      await h.close();
    }
  },
);

test(
  'a clean stop leaves no run `running`, even one whose failure could not be recorded',
  { timeout: 90_000 },
  async () => {
    const h = await startHarness();
    try {
      const dbPath = path.join(h.dir, 'daemon.db');
      const logs = new LogCapture();
      const stop = new AbortController();
      // The first page is slow: the run is started, then another connection holds the write lock past
      // the busy timeout, so neither the sweep nor the record of its failure can be written.
      h.sim.inject({ kind: 'delay_page', page: 1, ms: 2500 });
      const exit = runCli(['run'], {
        stdout: new PassThrough().resume(),
        stderr: new PassThrough().resume(),
        env: { ...h.env, TIERWATCH_DB: dbPath, TIERWATCH_SCHEDULE: '0 0 1 1 *' },
        stdoutIsTTY: false,
        signal: stop.signal,
        logDestination: logs,
      });
      let blocker: Database.Database | undefined;
      try {
        await waitForLogLine(logs, (line) => line.msg === 'sweep started');
        blocker = new Database(dbPath);
        blocker.exec('BEGIN IMMEDIATE');
        await waitForLogLine(logs, (line) => line.msg === 'sweep could not be recorded');
        blocker.exec('ROLLBACK');
        assert.deepEqual(ledgerStatuses(dbPath), ['running'], 'the failure could not be recorded');
      } finally {
        blocker?.close();
        stop.abort();
      }
      assert.equal(await exit, 0);
      assert.deepEqual(ledgerStatuses(dbPath), ['abandoned'], 'closed at the clean stop, not left for the next start');
    } finally {
      await h.close();
    }
  },
);
