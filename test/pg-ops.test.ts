/**
 * The operator's commands on a Postgres history, beside the same history in SQLite: `tierwatch
 * health` gives the same verdict lines and exit codes, and says `unhealthy:` (exit 1) for a server
 * it cannot reach or a database not migrated, never showing the password; `tierwatch alerts` lists
 * the same outbox alike, and `retry`/`drop` change it alike, without any leadership lease.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { openDatabase } from '../src/store/db.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { runCliCaptured } from './helpers/harness.ts';
import { postgresOrSkip, stopPgServer, type PgServer } from './helpers/pg-server.ts';
import { storeTwice, TWIN_T0, type TwinStep } from './helpers/twin-history.ts';

after(stopPgServer);

const PASSWORD = 'Sup3r-Secret-Pw';
const META = { symbol: 'META-USD', leverage: '2.5', im: 0.1, mm: 0.0125, notional: 150_000 };
const BTC = { symbol: 'BTC-USD', leverage: '20', im: 0.0125, mm: 0.0125, notional: 1e6 };
const STEPS: TwinStep[] = [
  { account: 'primary', advanceMs: 1000, fail: false, entries: [META, BTC] },
  { account: 'sub-1', advanceMs: 1000, fail: false, entries: [BTC] },
  { account: 'primary', advanceMs: 300_000, fail: false, entries: [{ ...META, notional: 12_345.678 }] },
];

const iso = (minutes: number) => new Date(TWIN_T0 + minutes * 60_000).toISOString();
const HOOK = 'https://hooks.example/services/secret-path-token';

/** One outbox in every state, with the staleness state reported stale: written alike to both. */
const OUTBOX = [
  [1, 'n-1', 'changes', HOOK, 'json', 1, iso(1), 'delivered', 1, iso(1), null, iso(1), null, null],
  [2, 'n-2', 'changes', HOOK, 'json', 3, iso(6), 'dead', 3, iso(7), 'HTTP 500', null, iso(7), 'gave up after 3'],
  [3, 'n-3', 'stale', HOOK, 'slack', null, iso(20), 'dead', 1, iso(20), 'HTTP 400', null, iso(20), 'refused'],
  [4, 'n-4', 'recovered', HOOK, 'json', null, iso(30), 'pending', 2, iso(31), 'timeout', null, null, null],
];
const OUTBOX_COLUMNS =
  'outbox_id, notification_id, kind, url, format, run_id, created_at, status, attempts, last_attempt_at, last_error, delivered_at, dead_at, dead_reason, body';
const STALE = JSON.stringify({ state: 'stale', since: iso(20) });

function fillSqlite(file: string): void {
  const db = openDatabase(file);
  try {
    const insert = db.sqlite.prepare(`INSERT INTO alert_outbox (${OUTBOX_COLUMNS}) VALUES (${'?, '.repeat(14)}'{}')`);
    for (const row of OUTBOX) insert.run(...row);
    db.sqlite
      .prepare('INSERT INTO alert_state (key, value, updated_at) VALUES (?, ?, ?)')
      .run('staleness', STALE, iso(20));
  } finally {
    db.close();
  }
}

async function fillPostgres(pool: pg.Pool): Promise<void> {
  const marks = OUTBOX[0]!.map((_, i) => `$${i + 1}`).join(', ');
  for (const row of OUTBOX) {
    await pool.query(`INSERT INTO alert_outbox (${OUTBOX_COLUMNS}) VALUES (${marks}, '{}')`, row);
  }
  await pool.query('INSERT INTO alert_state (key, value, updated_at) VALUES ($1, $2, $3)', [
    'staleness',
    STALE,
    iso(20),
  ]);
}

async function ask(db: string, argv: string[]) {
  const { code, stdout, stderr, logs } = await runCliCaptured(argv, { env: { TIERWATCH_DB: db, LOG_LEVEL: 'silent' } });
  return { code, stdout, stderr, logs: logs.text() };
}

function withPassword(url: string): string {
  const parsed = new URL(url);
  parsed.password = PASSWORD;
  return parsed.toString();
}

describe('health and alerts on Postgres', () => {
  let server: PgServer | null = null;
  let dir = '';
  let dbPath = '';
  let url = '';

  before(async (t) => {
    server = await postgresOrSkip(t as never);
    if (server === null) return;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgops-'));
    dbPath = path.join(dir, 'history.db');
    // The throwaway server trusts loopback: the password is carried along, and must stay unseen.
    url = withPassword(await server.createDatabase('ops'));
    await migratePostgres(url);
    const db = openDatabase(dbPath);
    const pool = createPgPool(url);
    try {
      await storeTwice(db, pool, STEPS);
    } finally {
      db.close();
    }
    try {
      fillSqlite(dbPath);
      await fillPostgres(pool);
    } finally {
      await pool.end();
    }
  });
  after(() => {
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  it('health: the same verdict lines and exit codes for the same history', async (t) => {
    if (server === null) return t.skip('no Postgres');
    // "N s ago" is measured at each call: the two calls may straddle a second.
    const same = (text: string) => text.replace(/\d+ s ago/, 'N s ago');
    const cases = [
      ['health', '--accounts', 'primary,sub-1', '--max-age', '3650d'],
      ['health', '--accounts', 'primary', '--max-age', '1m'],
      ['health', '--accounts', 'primary,nobody', '--max-age', '3650d'],
    ];
    const expected = [0, 1, 1];
    for (const [i, argv] of cases.entries()) {
      const [fromSqlite, fromPostgres] = [await ask(dbPath, argv), await ask(url, argv)];
      assert.equal(fromSqlite.code, expected[i], fromSqlite.stdout + fromSqlite.stderr);
      assert.deepEqual(
        { ...fromPostgres, stdout: same(fromPostgres.stdout) },
        { ...fromSqlite, stdout: same(fromSqlite.stdout) },
      );
    }
    assert.match(
      (await ask(url, cases[0]!)).stdout,
      /^healthy: 2 account\(s\) swept within 315360000 s; oldest last success 2026-01-01T00:00:02\.123Z\n$/,
    );
    assert.match((await ask(url, cases[2]!)).stdout, /^unhealthy: account nobody has no successful sweep yet\n$/);
  });

  it('health: an unreachable server, a missing database and one not migrated are unhealthy, the password unseen', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const fresh = withPassword(await server.createDatabase('unmigrated'));
    const cases: Array<[string, RegExp]> = [
      [
        url.replace(/:\d+\//, ':1/'),
        /^unhealthy: Cannot connect to postgres:\/\/postgres@127\.0\.0\.1:1\/.*ECONNREFUSED/,
      ],
      [
        url.replace(/\/[^/]+$/, '/no_such_database'),
        /^unhealthy: Cannot connect to .*no_such_database.*does not exist/,
      ],
      [fresh, /^unhealthy: The database .* holds no tierwatch history .*run `tierwatch migrate`/],
    ];
    for (const [target, expected] of cases) {
      const result = await ask(target, ['health']);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      assert.match(result.stdout, expected);
      assert.equal(result.stdout.split('\n').length, 2, 'one line');
      assert.ok(!`${result.stdout}${result.stderr}${result.logs}`.includes(PASSWORD));
    }
  });

  it('alerts: the same listing in every format and with every filter', async (t) => {
    if (server === null) return t.skip('no Postgres');
    for (const argv of [
      ['alerts', '--format', 'table'],
      ['alerts', '--format', 'json'],
      ['alerts', '--format', 'csv'],
      ['alerts', '--format', 'ndjson', '--dead'],
      ['alerts', '--pending'],
      ['alerts', '--last', '2'],
    ]) {
      const [fromSqlite, fromPostgres] = [await ask(dbPath, argv), await ask(url, argv)];
      assert.equal(fromSqlite.code, 0, fromSqlite.stderr);
      assert.deepEqual(fromPostgres, fromSqlite, argv.join(' '));
      assert.doesNotMatch(fromPostgres.stdout, /secret-path-token/);
    }
    const table = (await ask(url, ['alerts', '--format', 'table'])).stdout;
    assert.match(table, /1 pending, 2 dead of 4 shown\./);
    assert.match(table, /Collection has been reported STALE since 2026-01-01T00:20:00\.123Z\./);
  });

  it('alerts retry/drop: the same answers, refusals and resulting outbox on both', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const steps = [
      ['alerts', 'retry', '4'], // pending: refused (exit 2)
      ['alerts', 'drop', '9'], // no such notification (exit 2)
      ['alerts', 'drop', '3'],
      ['alerts', 'retry', '--dead'],
      ['alerts', 'retry', '--dead'], // none left
    ];
    const codes = [];
    for (const argv of steps) {
      const [fromSqlite, fromPostgres] = [await ask(dbPath, argv), await ask(url, argv)];
      assert.deepEqual(fromPostgres, fromSqlite, argv.join(' '));
      codes.push(fromPostgres.code);
    }
    assert.deepEqual(codes, [2, 2, 0, 0, 0]);
    // The retried one is queued anew at the retry's time: the same on both, but not the same instant.
    const listing = async (db: string) =>
      (JSON.parse((await ask(db, ['alerts', '--format', 'json'])).stdout) as Array<Record<string, unknown>>).map(
        ({ created_at: _created, ...row }) => row,
      );
    const rows = await listing(url);
    assert.deepEqual(rows, await listing(dbPath));
    assert.deepEqual(
      rows.map((row) => [row.outbox_id, row.status, row.attempts, row.dead_at]),
      [
        [1, 'delivered', 1, null],
        [2, 'pending', 0, null],
        [4, 'pending', 2, null],
      ],
    );
  });

  it("alerts retry waits for the leader's mark on the same row, then judges what it committed", async (t) => {
    if (server === null) return t.skip('no Postgres');
    const pool = createPgPool(url);
    t.after(() => pool.end());
    const leader = await pool.connect();
    try {
      // The leader gives up on notification 4 (as PgOutbox.markDead), its transaction not yet committed.
      await leader.query('BEGIN');
      await leader.query(
        `UPDATE alert_outbox SET status = 'dead', dead_at = $1, dead_reason = 'too old' WHERE outbox_id = 4 AND status = 'pending'`,
        [iso(60)],
      );
      const retry = ask(url, ['alerts', 'retry', '4']);
      // The operator's transaction waits on the row lock: it neither sees "pending" nor overwrites the mark.
      const waiting = async () =>
        (
          await pool.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'tierwatch alerts' AND wait_event_type = 'Lock'`,
          )
        ).rows[0].n === 1;
      const deadline = Date.now() + 30_000;
      while (!(await waiting())) {
        assert.ok(Date.now() < deadline, 'the retry should wait on the row lock');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await leader.query('COMMIT');
      const result = await retry;
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Retrying notification 4 \(recovered\): pending again, attempts reset/);
    } finally {
      leader.release();
    }
    const { rows } = await pool.query('SELECT status, attempts, dead_at FROM alert_outbox WHERE outbox_id = 4');
    assert.deepEqual(rows, [{ status: 'pending', attempts: 0, dead_at: null }]);
  });
});
