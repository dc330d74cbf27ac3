import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { defaultMigrationsFolder, migrateDatabase, openDatabase, WAL_AUTOCHECKPOINT_PAGES } from '../src/store/db.ts';
import { VIEW_COLUMNS } from '../src/store/schema.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { isTierwatchError, type ErrorCode } from '../src/errors.ts';

/** How many migrations the package ships: every fresh database gets them all. */
const MIGRATION_COUNT = (
  JSON.parse(fs.readFileSync(path.join(defaultMigrationsFolder(), 'meta', '_journal.json'), 'utf8')) as {
    entries: unknown[];
  }
).entries.length;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-db-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function rejectsWith(code: ErrorCode, pattern: RegExp) {
  return (error: unknown) => isTierwatchError(error, code) && pattern.test(error.message);
}

describe('openDatabase', () => {
  it('creates a missing parent directory owner-only, and migrates', () => {
    const dbPath = path.join(dir, 'data', 'nested', 'tierwatch.db');
    const db = openDatabase(dbPath);
    try {
      assert.equal(fs.statSync(path.dirname(dbPath)).mode & 0o777, 0o700);
      assert.equal(db.migrationsApplied, MIGRATION_COUNT);
      const tables = db.sqlite
        .prepare(`SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name`)
        .pluck()
        .all();
      for (const name of ['runs', 'tier_versions', 'tiers_current', 'tier_changes', 'run_ledger', 'tier_version']) {
        assert.ok(tables.includes(name), `${name} exists`);
      }
    } finally {
      db.close();
    }
  });

  it('leaves an existing directory as it is', () => {
    fs.chmodSync(dir, 0o755);
    openDatabase(path.join(dir, 'x.db')).close();
    assert.equal(fs.statSync(dir).mode & 0o777, 0o755);
  });

  it('sets WAL, foreign keys, a 5 s busy timeout and NORMAL sync', () => {
    const db = openDatabase(path.join(dir, 'x.db'));
    try {
      assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.sqlite.pragma('foreign_keys', { simple: true }), 1);
      assert.equal(db.sqlite.pragma('busy_timeout', { simple: true }), 5000);
      assert.equal(db.sqlite.pragma('synchronous', { simple: true }), 1);
    } finally {
      db.close();
    }
  });

  it('gives every public view exactly its documented columns, in order', () => {
    const db = openDatabase(path.join(dir, 'x.db'));
    try {
      for (const [view, columns] of Object.entries(VIEW_COLUMNS)) {
        const actual = db.sqlite.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(view);
        assert.deepEqual(actual, [...columns], view);
      }
      // The documented lists themselves (issue 2 §4), spelled out so the contract cannot drift quietly.
      assert.deepEqual(VIEW_COLUMNS.tier_changes.slice(0, 7), [
        'run_id',
        'observed_at',
        'account_id',
        'symbol',
        'leverage',
        'change',
        'changed_columns',
      ]);
      assert.deepEqual(VIEW_COLUMNS.runs.slice(0, 12), [
        'run_id',
        'account_id',
        'endpoint',
        'started_at',
        'observed_at',
        'finished_at',
        'status',
        'pages',
        'tiers',
        'changes',
        'error_code',
        'error_message',
      ]);
      const types = db.sqlite.prepare(`SELECT name, type FROM pragma_table_info('tier_versions')`).all() as Array<{
        name: string;
        type: string;
      }>;
      const typeOf = Object.fromEntries(types.map((row) => [row.name, row.type.toUpperCase()]));
      assert.equal(typeOf.initial_margin, 'REAL');
      assert.equal(typeOf.max_notional, 'REAL');
      assert.equal(typeOf.leverage, 'TEXT');
    } finally {
      db.close();
    }
  });

  it('applies nothing the second time, and migrateDatabase reports what it applied', () => {
    const dbPath = path.join(dir, 'x.db');
    assert.deepEqual(migrateDatabase(dbPath), { applied: MIGRATION_COUNT, total: MIGRATION_COUNT });
    assert.deepEqual(migrateDatabase(dbPath), { applied: 0, total: MIGRATION_COUNT });
    const db = openDatabase(dbPath);
    assert.equal(db.migrationsApplied, 0);
    db.close();
  });

  it('refuses a database migrated by a newer tierwatch, writable or read-only', () => {
    const dbPath = path.join(dir, 'x.db');
    const db = openDatabase(dbPath);
    db.sqlite
      .prepare(`INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('f00d', ?)`)
      .run(Date.UTC(2099, 0, 1));
    db.close();
    assert.throws(() => openDatabase(dbPath), rejectsWith('DB_SCHEMA_TOO_NEW', /newer tierwatch.*2099-01-01/));
    assert.throws(() => openDatabase(dbPath, { readonly: true }), rejectsWith('DB_SCHEMA_TOO_NEW', /upgrade/));
  });

  it('refuses a migration it does not know even when it is older', () => {
    const dbPath = path.join(dir, 'x.db');
    const db = openDatabase(dbPath);
    db.sqlite.prepare(`INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('beef', 1)`).run();
    db.close();
    assert.throws(() => openDatabase(dbPath), rejectsWith('DB_SCHEMA_TOO_NEW', /does not know/));
  });

  it('read-only: says there is no database yet, or that it needs migrating, and writes nothing', () => {
    const missing = path.join(dir, 'missing', 'x.db');
    assert.throws(() => openDatabase(missing, { readonly: true }), rejectsWith('DB_EMPTY', /no database at .*collect/));
    assert.equal(fs.existsSync(path.dirname(missing)), false);

    const blank = path.join(dir, 'blank.db');
    fs.writeFileSync(blank, '');
    assert.throws(
      () => openDatabase(blank, { readonly: true }),
      rejectsWith('DB_NEEDS_MIGRATION', /tierwatch migrate/),
    );
    assert.equal(fs.statSync(blank).size, 0);
  });

  it('read-only opens of a migrated database read the views and refuse writes', () => {
    const dbPath = path.join(dir, 'x.db');
    migrateDatabase(dbPath);
    const db = openDatabase(dbPath, { readonly: true });
    try {
      assert.equal(db.migrationsApplied, 0);
      assert.deepEqual(db.sqlite.prepare('SELECT count(*) AS n FROM runs').get(), { n: 0 });
      assert.throws(() => db.sqlite.prepare(`INSERT INTO meta VALUES ('a', 'b')`).run(), /readonly/);
    } finally {
      db.close();
    }
  });

  it('maps a file that is not a database to DB_CORRUPT, and leaves it as it was', () => {
    const dbPath = path.join(dir, 'x.db');
    const text =
      'this is not a database, just some text that is long enough to have a header.... and then some more text';
    fs.writeFileSync(dbPath, text);
    assert.throws(() => openDatabase(dbPath), rejectsWith('DB_CORRUPT', /not a SQLite database/));
    assert.equal(fs.readFileSync(dbPath, 'utf8'), text);
  });

  it('checkpoints the WAL at close, and close is idempotent', () => {
    const dbPath = path.join(dir, 'x.db');
    const db = openDatabase(dbPath);
    new HistoryStore(db).startRun({
      accountId: 'primary',
      endpoint: 'ws://127.0.0.1:1',
      publicKey: null,
      startedAt: new Date(),
    });
    assert.ok(fs.statSync(`${dbPath}-wal`).size > 0);
    db.close();
    db.close();
    assert.equal(fs.existsSync(`${dbPath}-wal`) ? fs.statSync(`${dbPath}-wal`).size : 0, 0);
  });

  it('maps a migration that fails to a TierwatchError carrying its message, and applies none of it', () => {
    const folder = path.join(dir, 'migrations');
    fs.mkdirSync(path.join(folder, 'meta'), { recursive: true });
    fs.writeFileSync(
      path.join(folder, 'meta', '_journal.json'),
      JSON.stringify({
        version: '7',
        dialect: 'sqlite',
        entries: [{ idx: 0, version: '6', when: 1700000000000, tag: '0000_broken', breakpoints: true }],
      }),
    );
    fs.writeFileSync(
      path.join(folder, '0000_broken.sql'),
      'CREATE TABLE fine (x INTEGER);\n--> statement-breakpoint\nCREATE TABLEX broken (y);\n',
    );
    const dbPath = path.join(dir, 'x.db');
    assert.throws(
      () => openDatabase(dbPath, { migrationsFolder: folder }),
      (error: unknown) =>
        isTierwatchError(error, 'INTERNAL') && /opening .*x\.db failed: .*syntax error/.test(error.message),
    );
    const probe = new Database(dbPath, { readonly: true });
    try {
      const tables = probe
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'fine'`)
        .pluck()
        .all();
      assert.deepEqual(tables, [], 'the failed migration was rolled back as a whole');
    } finally {
      probe.close();
    }
  });

  it('sets the WAL auto-checkpoint to a backstop on writable opens; checkpoint() copies the WAL without waiting for a reader', () => {
    const dbPath = path.join(dir, 'x.db');
    const db = openDatabase(dbPath);
    const reader = openDatabase(dbPath, { readonly: true });
    try {
      assert.equal(db.sqlite.pragma('wal_autocheckpoint', { simple: true }), WAL_AUTOCHECKPOINT_PAGES);
      assert.deepEqual(reader.checkpoint(), { busy: false, walFrames: 0, checkpointedFrames: 0 });
      const store = new HistoryStore(db);
      const start = () =>
        store.startRun({ accountId: 'primary', endpoint: 'ws://127.0.0.1:1', publicKey: null, startedAt: new Date() });
      start();
      const full = db.checkpoint();
      assert.equal(full.busy, false);
      assert.ok(full.walFrames > 0);
      assert.equal(full.checkpointedFrames, full.walFrames);

      // A reader in the middle of a read transaction pins its snapshot: frames after it wait for the next call.
      const count = reader.sqlite.prepare('SELECT count(*) FROM run_ledger').pluck();
      reader.sqlite.exec('BEGIN');
      assert.equal(count.get(), 1);
      start();
      const partial = db.checkpoint();
      assert.ok(partial.checkpointedFrames < partial.walFrames, JSON.stringify(partial));
      assert.equal(count.get(), 1, 'the reader keeps its snapshot');
      reader.sqlite.exec('COMMIT');
      assert.equal(count.get(), 2, 'committed rows are visible to readers before any checkpoint');
      const rest = db.checkpoint();
      assert.equal(rest.checkpointedFrames, rest.walFrames);
    } finally {
      reader.close();
      db.close();
    }
  });

  it('finds the migrations folder at the package root', () => {
    assert.equal(defaultMigrationsFolder(), path.resolve(import.meta.dirname, '..', 'migrations'));
  });
});

describe('drizzle on demand', () => {
  it('serves the typed drizzle handle on first use, over the same connection', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-orm-'));
    const db = openDatabase(path.join(dir, 'orm.db'));
    try {
      const { runLedger } = await import('../src/store/schema.ts');
      db.sqlite
        .prepare(
          "INSERT INTO run_ledger (account_id, endpoint, started_at, status) VALUES ('primary', 'wss://x/', '2026-01-01T00:00:00.000Z', 'running')",
        )
        .run();
      const rows = db.orm.select({ account: runLedger.account_id, status: runLedger.status }).from(runLedger).all();
      assert.deepEqual(rows, [{ account: 'primary', status: 'running' }]);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
