/**
 * Upgrading a 0.1.0 database in place (issue 12). The fixture was written by 0.1.0's own code
 * (test/fixtures/make-0.1.0-db.ts, run on commit dc26057), and 0.1.0's answers to every question
 * of test/fixtures/upgrade-answers.ts are stored beside it: after the upgrade, this tierwatch must
 * give the same answers. A kill or a failure in the middle of the upgrade must leave the 0.1.0
 * database exactly as it was, and the next start must upgrade it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type DatabaseType from 'better-sqlite3';
import { defaultMigrationsFolder, openDatabase } from '../src/store/db.ts';
import * as query from '../src/query/index.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { answers, type Answer } from './fixtures/upgrade-answers.ts';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3') as typeof DatabaseType;
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const FIXTURE = path.join(FIXTURES, 'history-0.1.0.db');
const EXPECTED = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'history-0.1.0.answers.json'), 'utf8')) as Answer[];
const SYMBOLS = ['META-USD', 'AAPL-USD', 'US_100', 'GOLD-USD'];
/** The migrations of 0.1.0 (the fixture has them all) and the ones this version adds. */
const V010_MIGRATIONS = 3;

function copyFixture(): { dir: string; dbPath: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-upgrade-'));
  const dbPath = path.join(dir, 'history.db');
  fs.copyFileSync(FIXTURE, dbPath);
  return { dir, dbPath };
}

/** Everything 0.1.0 stored, table by table, as one digest (and the row count of its history). */
function dump010(dbPath: string): { digest: string; versions: number; changes: number; migrations: number } {
  const sqlite = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const tables = ['run_ledger', 'tier_version', 'tier_change', 'meta', '__drizzle_migrations'];
    const content = tables.map((table) => sqlite.prepare(`SELECT * FROM ${table} ORDER BY 1`).all());
    const schema = sqlite.prepare(`SELECT type, name, sql FROM sqlite_master ORDER BY type, name`).all();
    return {
      digest: createHash('sha256')
        .update(JSON.stringify([content, schema]))
        .digest('hex'),
      versions: sqlite.prepare('SELECT count(*) FROM tier_versions').pluck().get() as number,
      changes: sqlite.prepare('SELECT count(*) FROM tier_changes').pluck().get() as number,
      migrations: sqlite.prepare('SELECT count(*) FROM __drizzle_migrations').pluck().get() as number,
    };
  } finally {
    sqlite.close();
  }
}

function viewColumns(sqlite: DatabaseType.Database, view: string): Array<{ name: string; type: string }> {
  return sqlite.prepare('SELECT name, type FROM pragma_table_info(?)').all(view) as Array<{
    name: string;
    type: string;
  }>;
}

/** Upgrades with this tierwatch, then checks every answer against 0.1.0's. */
function assertUpgradesWithSameAnswers(dbPath: string): void {
  const db = openDatabase(dbPath);
  try {
    assert.ok(db.migrationsApplied >= 3, `the history-v2 migrations were applied (${db.migrationsApplied})`);
    const actual = answers(query, db, SYMBOLS);
    assert.deepEqual(
      actual.map((answer) => answer.question),
      EXPECTED.map((answer) => answer.question),
    );
    for (let i = 0; i < EXPECTED.length; i++) assert.deepEqual(actual[i], EXPECTED[i], EXPECTED[i]!.question);
    // Each account's first successful sweep is its baseline: 40 tiers for each of three accounts.
    assert.equal(db.sqlite.prepare('SELECT count(*) FROM tier_changes WHERE baseline = 1').pluck().get(), 120);
    assert.equal(
      db.sqlite.prepare('SELECT count(*) FROM runs').pluck().get(),
      EXPECTED.find((a) => a.question === 'runs')!.rows,
    );
  } finally {
    db.close();
  }
}

describe('upgrading a 0.1.0 database in place', () => {
  it('keeps every answer of changes, snapshot --at, diff, history and runs, and the views’ columns', () => {
    const { dir, dbPath } = copyFixture();
    try {
      const old = new Database(dbPath, { readonly: true });
      const oldViews = Object.fromEntries(
        ['runs', 'tier_versions', 'tiers_current', 'tier_changes'].map((view) => [view, viewColumns(old, view)]),
      );
      old.close();
      assertUpgradesWithSameAnswers(dbPath);
      const db = openDatabase(dbPath, { readonly: true });
      try {
        // Same names, types and order; new columns only at the end.
        for (const [view, columns] of Object.entries(oldViews)) {
          assert.deepEqual(viewColumns(db.sqlite, view).slice(0, columns.length), columns, view);
        }
        assert.deepEqual(
          viewColumns(db.sqlite, 'tier_changes')
            .slice(oldViews.tier_changes!.length)
            .map((c) => c.name),
          ['leverage_value', 'classification', 'baseline'],
        );
        assert.equal(
          db.sqlite.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'tier_change'`).pluck().get(),
          0,
          'one record: tier_change is gone',
        );
      } finally {
        db.close();
      }
      // The upgraded history goes on: a sweep after it diffs against the upgraded current state.
      const writable = openDatabase(dbPath);
      try {
        const store = new HistoryStore(writable);
        const current = writable.sqlite
          .prepare(
            `SELECT symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id FROM tiers_current WHERE account_id = 'primary'`,
          )
          .all() as never[];
        const runId = store.startRun({
          accountId: 'primary',
          endpoint: 'wss://sim.test/',
          publicKey: null,
          startedAt: new Date('2026-10-01T00:00:00.000Z'),
        });
        const outcome = store.commitSweep(runId, {
          accountId: 'primary',
          observedAt: new Date('2026-10-01T00:00:01.000Z'),
          finishedAt: new Date('2026-10-01T00:00:02.000Z'),
          tiers: current,
          pages: 1,
          maxRemovalRatio: 0.5,
        });
        assert.deepEqual([outcome.changes.length, outcome.baseline], [0, false]);
      } finally {
        writable.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // Where the kill lands: after step 1 has rewritten every time, and after step 2 has copied the
  // versions into the new table (before the old one is dropped).
  const killPoints: Array<[string, string, RegExp]> = [
    ['step 1, after the times were rewritten', '_history_v2_prepare.sql', /$/],
    [
      'step 2, between copying the versions and dropping the old table',
      '_history_v2.sql',
      /(?=DROP TABLE `tier_version`;)/,
    ],
  ];
  for (const [where, file, at] of killPoints) {
    it(`a kill in ${where} leaves the 0.1.0 database whole and usable, and the next start upgrades it`, () => {
      const { dir, dbPath } = copyFixture();
      try {
        const before = dump010(dbPath);
        const folder = path.join(dir, 'migrations');
        fs.cpSync(defaultMigrationsFolder(), folder, { recursive: true });
        const target = fs.readdirSync(folder).find((name) => name.endsWith(file))!;
        const sql = fs.readFileSync(path.join(folder, target), 'utf8');
        const crash = file.endsWith('prepare.sql')
          ? '--> statement-breakpoint\nSELECT crash();'
          : 'SELECT crash();--> statement-breakpoint\n';
        fs.writeFileSync(path.join(folder, target), sql.replace(at, crash));
        const child = spawnSync(process.execPath, [path.join(FIXTURES, 'upgrade-crash-child.ts'), dbPath, folder], {
          encoding: 'utf8',
          timeout: 120_000,
        });
        assert.equal(child.signal, 'SIGKILL', `the child was killed mid-upgrade: ${child.stdout}${child.stderr}`);
        assert.ok(fs.existsSync(`${dbPath}-wal`), 'the killed upgrade left its WAL behind');

        const after = dump010(dbPath);
        assert.deepEqual(after, before, 'the 0.1.0 database is exactly as it was');
        assert.equal(after.migrations, V010_MIGRATIONS);
        assertUpgradesWithSameAnswers(dbPath);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('a statement failing mid-upgrade (as on a full disk) rolls it all back, and the next start upgrades it', () => {
    // A real full disk cannot be had here: the upgraded layout is smaller than 0.1.0's, so SQLite
    // reuses the pages it frees and a page limit is never hit. What a full disk does to the upgrade
    // is what any failing statement does: SQLITE_FULL aborts the statement and the migrator rolls
    // the one transaction back. So a statement fails in step 2, after the versions were copied.
    const { dir, dbPath } = copyFixture();
    try {
      const before = dump010(dbPath);
      const folder = path.join(dir, 'migrations');
      fs.cpSync(defaultMigrationsFolder(), folder, { recursive: true });
      const target = fs.readdirSync(folder).find((name) => name.endsWith('_history_v2.sql'))!;
      const sql = fs.readFileSync(path.join(folder, target), 'utf8');
      fs.writeFileSync(
        path.join(folder, target),
        sql.replace(/(?=DROP TABLE `tier_version`;)/, 'SELECT disk_full();--> statement-breakpoint\n'),
      );
      const sqlite = new Database(dbPath);
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('foreign_keys = ON');
      sqlite.function('disk_full', () => {
        throw new Error('database or disk is full (simulated)');
      });
      const { drizzle } = require('drizzle-orm/better-sqlite3') as typeof import('drizzle-orm/better-sqlite3');
      const { migrate } =
        require('drizzle-orm/better-sqlite3/migrator') as typeof import('drizzle-orm/better-sqlite3/migrator');
      assert.throws(
        () => migrate(drizzle(sqlite), { migrationsFolder: folder }),
        (error: Error) => /full/.test(`${error.message} ${(error.cause as Error | undefined)?.message}`),
      );
      sqlite.close();
      assert.deepEqual(dump010(dbPath), before);
      assertUpgradesWithSameAnswers(dbPath);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the other 0.1.0 fixture (db-safety's, made by 0.1.0's migration child) shows the same rows in every public view after the upgrade", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-upgrade-'));
    try {
      const dbPath = path.join(dir, 'history.db');
      fs.copyFileSync(path.join(FIXTURES, 'tierwatch-0.1.0.db'), dbPath);
      const views = ['tier_changes', 'tier_versions', 'tiers_current', 'runs'];
      // Each view's rows on its 0.1.0 columns, in a total order, read straight from the file.
      const read = (sqlite: DatabaseType.Database, columns: Map<string, string[]>) =>
        views.map((view) => {
          const list = columns
            .get(view)!
            .map((name) => `"${name}"`)
            .join(', ');
          return sqlite.prepare(`SELECT ${list} FROM ${view} ORDER BY ${list}`).raw().all();
        });
      const old = new Database(dbPath, { readonly: true, fileMustExist: true });
      const columns = new Map(views.map((view) => [view, viewColumns(old, view).map((column) => column.name)]));
      const before = read(old, columns);
      old.close();
      assert.equal(before[0]!.length, 68, "0.1.0's change rows");
      const db = openDatabase(dbPath);
      try {
        for (const view of views) {
          assert.deepEqual(
            viewColumns(db.sqlite, view)
              .map((column) => column.name)
              .slice(0, columns.get(view)!.length),
            columns.get(view),
            view,
          );
        }
        assert.deepEqual(read(db.sqlite, columns), before);
      } finally {
        db.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
