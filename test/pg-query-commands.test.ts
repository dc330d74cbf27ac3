/**
 * The query commands on a Postgres history, beside the same history in SQLite: `runs` gives the
 * same ledger plus each run's leader_epoch, `tierwatch query` gives the same output in every format
 * (a read-only transaction; a write refused as on SQLite; --timeout stopping a runaway statement
 * with the same error), an empty history says so alike, and a password in the URL never appears in
 * any output, error or log line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../src/store/db.ts';
import { connectPg, createPgPool } from '../src/store/pg/connection.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { numberParameters, PgReadSession } from '../src/store/pg/read-session.ts';
import { isTierwatchError } from '../src/errors.ts';
import { spawnCli } from './helpers/faults.ts';
import { runCliCaptured } from './helpers/harness.ts';
import { postgresOrSkip, stopPgServer, type PgServer } from './helpers/pg-server.ts';
import { storeTwice, TWIN_T0, type TwinStep } from './helpers/twin-history.ts';

after(stopPgServer);

const PASSWORD = 'Sup3r-Secret-Pw';

function step(account: string, advanceMs: number, entries: TwinStep['entries'], fail = false): TwinStep {
  return { account, advanceMs, fail, entries };
}

const META = { symbol: 'META-USD', leverage: '2.5', im: 0.1, mm: 0.0125, notional: 150_000 };
const BTC = { symbol: 'BTC-USD', leverage: '20', im: 0.0125, mm: 0.0125, notional: 1e6 };
const STEPS: TwinStep[] = [
  step('primary', 1000, [META, BTC]),
  step('sub-1', 1000, [BTC]),
  step('primary', 300_000, [{ ...META, notional: 12_345.678 }, BTC]),
  step('primary', 300_000, [META], true),
  step('primary', 300_000, [META]),
];

async function ask(db: string, argv: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr, logs } = await runCliCaptured(argv, {
    env: { TIERWATCH_DB: db, LOG_LEVEL: 'silent', ...env },
  });
  return { code, stdout, stderr, logs: logs.text() };
}

it('SQLite parameters become numbered ones: `?` in order, `@name` once per name, quoted text untouched', () => {
  assert.deepEqual(
    numberParameters(
      'SELECT \'?\', "@x" FROM t WHERE a >= @since AND b = ? AND c < @since AND d IN (?, ?)',
      { since: 5 },
      ['p', 'q', 'r'],
    ),
    {
      text: 'SELECT \'?\', "@x" FROM t WHERE a >= $1 AND b = $2 AND c < $1 AND d IN ($3, $4)',
      values: [5, 'p', 'q', 'r'],
    },
  );
});

describe('query commands on Postgres', () => {
  let server: PgServer | null = null;
  let dir = '';
  let dbPath = '';
  let url = '';

  before(async (t) => {
    server = await postgresOrSkip(t as never);
    if (server === null) return;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgcmd-'));
    dbPath = path.join(dir, 'history.db');
    url = await server.createDatabase('querycmd');
    await migratePostgres(url);
    const db = openDatabase(dbPath);
    const pool = createPgPool(url);
    try {
      await storeTwice(db, pool, STEPS);
    } finally {
      db.close();
      await pool.end();
    }
  });
  after(() => {
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a read session is one read-only transaction whose statements stop at its timeout', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const session = await PgReadSession.open(url, { statementTimeoutMs: 300 });
    try {
      assert.deepEqual(await session.rows('SHOW transaction_read_only', {}, [], { raw: true }), [['on']]);
      assert.deepEqual(await session.rows('SHOW transaction_isolation', {}, [], { raw: true }), [['repeatable read']]);
      const started = Date.now();
      await assert.rejects(
        session.rows('SELECT pg_sleep(10)'),
        (error) => isTierwatchError(error, 'DB_READ_FAILED') && /statement timeout/.test(error.message),
      );
      assert.ok(Date.now() - started < 8000, `stopped after ${Date.now() - started} ms`);
    } finally {
      await session.close();
    }
    const writer = await PgReadSession.open(url);
    try {
      await assert.rejects(
        writer.rows("INSERT INTO meta (key, value) VALUES ('k', 'v')"),
        (error) => isTierwatchError(error, 'DB_READ_FAILED') && /read-only transaction/.test(error.message),
      );
    } finally {
      await writer.close();
    }
  });

  it('runs: the same ledger, with the leader_epoch of each run (null on SQLite)', async (t) => {
    if (server === null) return t.skip('no Postgres');
    for (const format of ['table', 'csv', 'ndjson']) {
      const argv = ['runs', '--format', format];
      const [fromSqlite, fromPostgres] = [await ask(dbPath, argv), await ask(url, argv)];
      if (format === 'table') assert.deepEqual(fromPostgres, fromSqlite);
      else {
        assert.equal(fromPostgres.code, 0);
        // The one difference: the epoch the Postgres writer stored each run under.
        const epochless = (text: string) => text.replace(/,"leader_epoch":(null|1)}/g, '}').replace(/,(1)?\n/g, '\n');
        assert.equal(epochless(fromPostgres.stdout), epochless(fromSqlite.stdout));
      }
    }
    const rows = JSON.parse((await ask(url, ['runs', '--format', 'json'])).stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(
      rows.map((row) => [row.run_id, row.status, Object.keys(row).at(-1), row.leader_epoch]),
      [
        [1, 'ok', 'leader_epoch', 1],
        [2, 'ok', 'leader_epoch', 1],
        [3, 'ok', 'leader_epoch', 1],
        [4, 'failed', 'leader_epoch', 1],
        [5, 'ok', 'leader_epoch', 1],
      ],
    );
    const sqliteRows = JSON.parse((await ask(dbPath, ['runs', '--format', 'json'])).stdout) as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(
      sqliteRows.map((row) => row.leader_epoch),
      [null, null, null, null, null],
    );
    const csv = (await ask(url, ['runs', '--format', 'csv', '--last', '1'])).stdout.split('\n');
    assert.match(csv[0]!, /,public_key,leader_epoch$/);
    assert.match(csv[1]!, /,pk-demo,1$/);
    // Its flags behave alike.
    for (const argv of [
      ['runs', '--failed', '--format', 'json'],
      ['runs', '--last', '0'],
      ['runs', '--account', 'sub-*', '--format', 'table'],
    ]) {
      const [a, b] = [await ask(dbPath, argv), await ask(url, argv)];
      assert.equal(b.code, a.code, argv.join(' '));
      assert.equal(b.stderr, a.stderr, argv.join(' '));
    }
  });

  it('query: the same output in every format, from a read-only transaction', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const sql =
      "SELECT run_id, observed_at, account_id, symbol, leverage, change, changed_columns, new_max_notional, baseline FROM tier_changes WHERE symbol <> 'x' ORDER BY run_id, symbol, leverage";
    for (const format of ['table', 'json', 'ndjson', 'csv']) {
      const argv = ['query', sql, '--format', format];
      const [fromSqlite, fromPostgres] = [await ask(dbPath, argv), await ask(url, argv)];
      assert.equal(fromSqlite.code, 0, fromSqlite.stderr);
      assert.deepEqual(fromPostgres, fromSqlite, format);
    }
    // The table ends with the last successful sweep, as on SQLite.
    const table = await ask(url, ['query', 'SELECT 1 AS one', '--format', 'table']);
    assert.match(table.stdout, /Last successful sweep: 2026-01-01T00:15:02\.123Z/);
  });

  it('query: a write is refused as on SQLite (exit 2), also one the text guard lets through', async (t) => {
    if (server === null) return t.skip('no Postgres');
    for (const sql of ['DELETE FROM runs', 'INSERT INTO meta VALUES (1, 2)', 'SELECT 1; SELECT 2']) {
      const [a, b] = [await ask(dbPath, ['query', sql]), await ask(url, ['query', sql])];
      assert.equal(a.code, 2, sql);
      assert.deepEqual(b, a, sql);
    }
    // A function that writes passes the text guard: the read-only transaction refuses it.
    const writing = await ask(url, [
      'query',
      "SELECT set_config('default_transaction_read_only', 'off', false), nextval('run_ledger_run_id_seq')",
    ]);
    assert.equal(writing.code, 2, writing.stderr);
    assert.match(writing.stderr, /USAGE|read-only|only reads/);
    const count = await ask(url, ['query', 'SELECT count(*) AS n FROM runs', '--format', 'csv']);
    assert.equal(count.stdout, 'n\n5\n');
  });

  it('query: --timeout stops a runaway statement with the same error as on SQLite', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const sql = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';
    const started = Date.now();
    const fromPostgres = await ask(url, ['query', sql, '--timeout', '500ms']);
    assert.ok(Date.now() - started < 15_000, `stopped after ${Date.now() - started} ms`);
    const fromSqlite = await ask(dbPath, ['query', sql, '--timeout', '500ms']);
    assert.equal(fromSqlite.code, 1);
    assert.deepEqual(fromPostgres, fromSqlite);
    assert.match(fromPostgres.stderr, /--timeout 500ms/);
  });

  it('query: SIGINT stops the statement at once (exit 130), and it does not keep running on the server', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const admin = await connectPg(url);
    try {
      const sleeping = async () =>
        (
          await admin.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'tierwatch query' AND state = 'active'",
          )
        ).rows.length;
      const controller = new AbortController();
      const run = runCliCaptured(['query', 'SELECT pg_sleep(60)', '--timeout', '10m'], {
        env: { TIERWATCH_DB: url, LOG_LEVEL: 'silent' },
        signal: controller.signal,
      });
      // The signal is sent once the statement is seen running on the server.
      const deadline = Date.now() + 20_000;
      while ((await sleeping()) === 0) {
        assert.ok(Date.now() < deadline, 'the statement started');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const sentAt = Date.now();
      controller.abort('SIGINT');
      const result = await run;
      assert.equal(result.code, 130, result.stderr);
      assert.equal(result.stderr, 'tierwatch query: The query was stopped by SIGINT.\n');
      assert.ok(Date.now() - sentAt < 10_000, `exited ${Date.now() - sentAt} ms after SIGINT`);
      // Ending the session ends the statement: the server notices at its next check.
      while ((await sleeping()) > 0) {
        assert.ok(Date.now() < sentAt + 10_000, 'the statement was cancelled on the server');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await admin.end();
    }
  });

  it('query: a command killed with SIGKILL leaves no statement running on the server for long', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const admin = await connectPg(url);
    try {
      const sleeping = async () =>
        (
          await admin.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'tierwatch query' AND state = 'active'",
          )
        ).rows.length;
      const child = spawnCli(['query', 'SELECT pg_sleep(61)', '--timeout', '10m'], {
        TIERWATCH_DB: url,
        LOG_LEVEL: 'silent',
      });
      const deadline = Date.now() + 60_000;
      while ((await sleeping()) === 0) {
        assert.ok(Date.now() < deadline, `the statement started: ${child.stderr()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      child.child.kill('SIGKILL');
      await child.exited;
      const killedAt = Date.now();
      // The server checks every second that its client is still there (client_connection_check_interval).
      while ((await sleeping()) > 0) {
        assert.ok(Date.now() < killedAt + 15_000, 'the server ended the orphaned statement');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await admin.end();
    }
  });

  it('a database that is not migrated, behind or ahead is refused as a SQLite file would be', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const bare = await server.createDatabase('querybare');
    const never = await ask(bare, ['snapshot']);
    assert.equal(never.code, 1);
    assert.match(never.stderr, /holds no tierwatch history .*run `tierwatch migrate`/);
    await migratePostgres(bare);
    const admin = await connectPg(bare);
    try {
      const newest = `(SELECT max(created_at) FROM drizzle.__drizzle_migrations)`;
      await admin.query(`DELETE FROM drizzle.__drizzle_migrations WHERE created_at = ${newest}`);
      const behind = await ask(bare, ['changes']);
      assert.equal(behind.code, 1);
      assert.match(behind.stderr, /needs 1 migration\(s\) this tierwatch would apply: run `tierwatch migrate`/);
      await admin.query(`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('future', 4102444800000)`);
      const ahead = await ask(bare, ['runs']);
      assert.equal(ahead.code, 1);
      assert.match(ahead.stderr, /was migrated by a newer tierwatch .* upgrade tierwatch/);
    } finally {
      await admin.end();
    }
  });

  it('an empty history, an instant before it, a bad run id: the same errors', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const emptyUrl = await server.createDatabase('queryempty');
    await migratePostgres(emptyUrl);
    const emptyPath = path.join(dir, 'empty.db');
    openDatabase(emptyPath).close();
    for (const argv of [['snapshot', '--at', '2026-01-01'], ['diff', '1d', 'now'], ['changes'], ['runs']]) {
      const [a, b] = [await ask(emptyPath, argv), await ask(emptyUrl, argv)];
      assert.deepEqual(b, a, argv.join(' '));
    }
    const before = new Date(TWIN_T0 - 1).toISOString();
    for (const argv of [
      ['snapshot', '--at', before],
      ['diff', before, 'now'],
      ['diff', 'run:4', 'run:5'],
      ['changes', '--since', 'run:99'],
      ['diff', 'run:5', 'run:1'],
      ['changes', '--only', 'sideways'],
    ]) {
      const [a, b] = [await ask(dbPath, argv), await ask(url, argv)];
      assert.notEqual(a.code, 0, argv.join(' '));
      assert.deepEqual(b, a, argv.join(' '));
    }
  });

  it('a long change feed and a long query stream from a cursor in batches, in the same order', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const bulkUrl = await server.createDatabase('querybulk');
    await migratePostgres(bulkUrl);
    const bulkPath = path.join(dir, 'bulk.db');
    const db = openDatabase(bulkPath);
    const pool = createPgPool(bulkUrl);
    // 2,500 tiers, then a quarter of them changed: more rows than three cursor batches.
    const tiers = Array.from({ length: 2500 }, (_, i) => ({
      symbol: `S${Math.floor(i / 5)}-USD`,
      leverage: String((i % 5) + 1),
      im: 0.1,
      mm: 0.05,
      notional: 1e6,
    }));
    try {
      await storeTwice(db, pool, [
        step('primary', 1000, tiers),
        step(
          'primary',
          300_000,
          tiers.map((tier, i) => (i % 4 === 0 ? { ...tier, notional: 9e5 } : tier)),
        ),
      ]);
    } finally {
      db.close();
      await pool.end();
    }
    for (const argv of [
      ['changes', '--include-baseline', '--format', 'ndjson'],
      ['changes', '--include-baseline', '--format', 'table'],
      ['changes', '--format', 'csv', '--symbol', 'S1*'],
    ]) {
      const [a, b] = [await ask(bulkPath, argv), await ask(bulkUrl, argv)];
      assert.equal(a.code, 0, a.stderr);
      assert.deepEqual(b, a, argv.join(' '));
    }
    const lines = (await ask(bulkUrl, ['changes', '--include-baseline', '--format', 'ndjson'])).stdout.split('\n');
    assert.equal(lines.length - 1, 2500 + 625);
    // `tierwatch query` reads a SELECT through a cursor too: several batches, the same output.
    const versions =
      'SELECT account_id, symbol, leverage, max_notional, valid_from, valid_to, run_id FROM tier_versions ORDER BY symbol, leverage, valid_from';
    for (const argv of [
      ['query', versions, '--format', 'ndjson'],
      ['query', versions, '--format', 'csv'],
      ['query', versions, '--format', 'table'],
      ['query', `${versions} LIMIT 0`, '--format', 'csv'],
      ['query', `${versions} LIMIT 0`, '--format', 'table'],
    ]) {
      const [a, b] = [await ask(bulkPath, argv), await ask(bulkUrl, argv)];
      assert.equal(a.code, 0, a.stderr);
      assert.deepEqual(b, a, argv.join(' '));
    }
    assert.equal((await ask(bulkUrl, ['query', versions, '--format', 'ndjson'])).stdout.split('\n').length - 1, 3125);
    // EXPLAIN cannot be a cursor: it is read whole, and still answers.
    const explain = await ask(bulkUrl, ['query', `EXPLAIN ${versions}`, '--format', 'csv']);
    assert.equal(explain.code, 0, explain.stderr);
    assert.match(explain.stdout, /^QUERY PLAN\n/);
    // A write hidden in a WITH is refused before a row is read.
    const hidden = await ask(bulkUrl, ['query', 'WITH d AS (DELETE FROM run_ledger RETURNING 1) SELECT * FROM d']);
    assert.equal(hidden.code, 2, hidden.stderr);
  });

  it('the password in the URL never appears in any output, error or log line', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const withPassword = (target: string) => {
      const parsed = new URL(target);
      parsed.password = PASSWORD;
      return parsed.toString();
    };
    // The throwaway server trusts loopback: the password is carried along, and must stay unseen.
    const good = withPassword(url);
    const unreachable = withPassword(url.replace(/:\d+\//, ':1/'));
    const missing = withPassword(url.replace(/\/[^/]+$/, '/no_such_database'));
    const commands = [
      ['snapshot'],
      ['diff', '1d'],
      ['changes', '--include-baseline'],
      ['history', 'META*'],
      ['runs'],
      ['query', 'SELECT * FROM runs'],
      ['query', 'SELECT * FROM nowhere'],
    ];
    for (const target of [good, unreachable, missing]) {
      for (const argv of commands) {
        const result = await ask(target, [...argv, '--format', 'table'], { LOG_LEVEL: 'debug' });
        const seen = `${result.stdout}\n${result.stderr}\n${result.logs}`;
        assert.ok(!seen.includes(PASSWORD), `${argv.join(' ')}: ${seen}`);
        if (target !== good) {
          assert.equal(result.code, 1, `${argv.join(' ')}: ${result.stderr}`);
          assert.match(
            result.stderr,
            /postgres:\/\/postgres@127\.0\.0\.1:/,
            'the database is named, without its password',
          );
        }
      }
    }
    // TIERWATCH_DB_FILE, the way to keep the URL out of the environment, works the same.
    const file = path.join(dir, 'db-url');
    fs.writeFileSync(file, `${good}\n`, { mode: 0o600 });
    const fromFile = await runCliCaptured(['runs', '--format', 'csv', '--last', '1'], {
      env: { TIERWATCH_DB_FILE: file, LOG_LEVEL: 'silent' },
    });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.match(fromFile.stdout, /,pk-demo,1\n$/);
  });
});
