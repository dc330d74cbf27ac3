import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { prepareReadOnly, splitStatements } from '../src/query/readonly-sql.ts';
import { isTierwatchError } from '../src/errors.ts';
import { cli, tempHistory, tier, type TempHistory } from './query-fixture.ts';

describe('splitStatements', () => {
  it('splits at top-level semicolons only, keeping strings, identifiers and comments whole', () => {
    const pieces = splitStatements(`SELECT ';' AS "a;b", [c;d] FROM t -- x; y
      ; /* ; */ SELECT 'it''s'; ;  -- only a comment`);
    assert.deepEqual(
      pieces.map((piece) => piece.text),
      [`SELECT ';' AS "a;b", [c;d] FROM t -- x; y`, `/* ; */ SELECT 'it''s'`],
    );
    assert.equal(pieces[1]!.code.trimStart().startsWith('SELECT'), true);
  });
});

describe('tierwatch query refuses anything but a plain read', () => {
  let h: TempHistory;
  let db: StoreDb;
  before(() => {
    h = tempHistory();
    h.sweep('primary', '2026-10-01T00:00:00.000Z', [tier('META-USD', '20', 0.05, 0.025, 190_000)]);
    db = openDatabase(h.dbPath, { readonly: true });
  });
  after(() => {
    db.close();
    h.close();
  });

  const refused = [
    `INSERT INTO meta (key, value) VALUES ('x', 'y')`,
    `UPDATE run_ledger SET status = 'ok'`,
    `DELETE FROM tier_version`,
    `CREATE TABLE t (x)`,
    `CREATE TEMP TABLE t (x)`,
    `DROP VIEW runs`,
    `ATTACH DATABASE 'ATTACHED' AS other`,
    `DETACH DATABASE main`,
    `VACUUM`,
    `VACUUM INTO 'COPY'`,
    `PRAGMA user_version = 1`,
    `PRAGMA main.user_version=1`,
    `pragma /* sneaky */ journal_mode = DELETE`,
    `PRAGMA writable_schema`,
    `PRAGMA wal_checkpoint(TRUNCATE)`,
    `PRAGMA optimize`,
    `BEGIN IMMEDIATE`,
    `REINDEX`,
    `ANALYZE`,
    `WITH x AS (SELECT 1) DELETE FROM meta`,
    `SELECT 1; DELETE FROM meta`,
    `SELECT 1; ATTACH 'ATTACHED' AS other`,
    `-- a comment first\nINSERT INTO meta VALUES ('a', 'b')`,
  ];
  for (const sql of refused) {
    it(`refuses ${JSON.stringify(sql)} with exit 2 and writes nothing`, async () => {
      assert.throws(
        () =>
          prepareReadOnly(
            db.sqlite,
            sql.replaceAll('ATTACHED', path.join(h.dir, 'attached.db')).replaceAll('COPY', path.join(h.dir, 'copy.db')),
          ),
        (error: unknown) => isTierwatchError(error, 'USAGE') && /Refused .*read-only/.test(error.message),
      );
      const result = await cli(h.dbPath, [
        'query',
        '--',
        sql.replaceAll('ATTACHED', path.join(h.dir, 'attached.db')).replaceAll('COPY', path.join(h.dir, 'copy.db')),
      ]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /Refused/);
      assert.equal(result.stdout, '');
      assert.equal(fs.existsSync(path.join(h.dir, 'attached.db')), false);
      assert.equal(fs.existsSync(path.join(h.dir, 'copy.db')), false);
    });
  }

  it('the history is untouched after all of that', () => {
    assert.equal(db.sqlite.prepare('SELECT count(*) FROM tier_versions').pluck().get(), 1);
    assert.equal(db.sqlite.pragma('user_version', { simple: true }), 0);
  });

  it('allows SELECT, WITH, VALUES, EXPLAIN and read-only pragmas', async () => {
    const allowed: Array<[string, unknown]> = [
      ['SELECT symbol FROM tiers_current', [{ symbol: 'META-USD' }]],
      ['  select count(*) AS n from tier_changes;  ', [{ n: 1 }]],
      ['WITH x AS (SELECT 2 AS v) SELECT v FROM x', [{ v: 2 }]],
      ['VALUES (1, 2)', [{ column1: 1, column2: 2 }]],
      ['PRAGMA user_version', [{ user_version: 0 }]],
      ["SELECT name FROM pragma_table_info('runs') LIMIT 2", [{ name: 'run_id' }, { name: 'account_id' }]],
    ];
    for (const [sql, expected] of allowed) {
      const result = await cli(h.dbPath, ['query', sql, '--format', 'json']);
      assert.equal(result.code, 0, `${sql}: ${result.stderr}`);
      assert.deepEqual(JSON.parse(result.stdout), expected, sql);
    }
    for (const sql of [
      'PRAGMA table_info(runs)',
      'PRAGMA index_list(tier_version)',
      'EXPLAIN QUERY PLAN SELECT * FROM runs',
      'PRAGMA quick_check',
    ]) {
      const result = await cli(h.dbPath, ['query', sql, '--format', 'ndjson']);
      assert.equal(result.code, 0, `${sql}: ${result.stderr}`);
      assert.ok(result.stdout.length > 0, sql);
    }
  });

  it('asks for one statement at a time, and reports bad SQL as usage', async () => {
    const two = await cli(h.dbPath, ['query', 'SELECT 1; SELECT 2']);
    assert.equal(two.code, 2);
    assert.match(two.stderr, /one statement at a time/);
    const bad = await cli(h.dbPath, ['query', 'SELECT * FROM no_such_view']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no such table: no_such_view/);
    const empty = await cli(h.dbPath, ['query', ' -- nothing ']);
    assert.equal(empty.code, 2);
  });
});
