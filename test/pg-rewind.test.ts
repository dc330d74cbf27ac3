/**
 * `tierwatch rewind` on a Postgres history, beside the same history in SQLite: the same dry run,
 * refusals, discarding and resulting history; refused with DB_LEADER_ELSEWHERE (having changed
 * nothing) while a collector leads; and when it rewinds it has taken the leadership lease — the
 * epoch moved on, so a collector that led before reloads its current versions — and let it go.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../src/store/db.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { LeaderLease } from '../src/store/pg/lease.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { runCliCaptured } from './helpers/harness.ts';
import { postgresOrSkip, stopPgServer, type PgServer } from './helpers/pg-server.ts';
import { storeTwice, type TwinStep } from './helpers/twin-history.ts';

after(stopPgServer);

const META = { symbol: 'META-USD', leverage: '2.5', im: 0.1, mm: 0.0125, notional: 150_000 };
const BTC = { symbol: 'BTC-USD', leverage: '20', im: 0.0125, mm: 0.0125, notional: 1e6 };
const STEPS: TwinStep[] = [
  { account: 'primary', advanceMs: 1000, fail: false, entries: [META, BTC] },
  { account: 'sub-1', advanceMs: 1000, fail: false, entries: [BTC] },
  { account: 'primary', advanceMs: 300_000, fail: false, entries: [{ ...META, notional: 12_345.678 }] },
  { account: 'primary', advanceMs: 300_000, fail: false, entries: [META, { ...BTC, im: 0.1 }] },
];

async function ask(db: string, argv: string[]) {
  const { code, stdout, stderr } = await runCliCaptured(argv, { env: { TIERWATCH_DB: db, LOG_LEVEL: 'silent' } });
  return { code, stdout, stderr };
}

describe('rewind on Postgres', () => {
  let server: PgServer | null = null;
  let dir = '';
  let dbPath = '';
  let url = '';

  before(async (t) => {
    server = await postgresOrSkip(t as never);
    if (server === null) return;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgrewind-'));
    dbPath = path.join(dir, 'history.db');
    url = await server.createDatabase('rewind');
    await migratePostgres(url);
    const db = openDatabase(dbPath);
    const pool = createPgPool(url);
    try {
      await storeTwice(db, pool, STEPS);
      // The twin's writer led to store it; it has stopped, as a daemon stopped for a rewind would.
      await pool.query('UPDATE leader_lease SET expires_at = clock_timestamp()');
    } finally {
      db.close();
      await pool.end();
    }
  });
  after(() => {
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the same dry run and refusals; refused while a collector leads; then the same rewound history', async (t) => {
    if (server === null) return t.skip('no Postgres');
    const both = async (argv: string[]) => {
      const [fromSqlite, fromPostgres] = [await ask(dbPath, argv), await ask(url, argv)];
      assert.deepEqual(fromPostgres, fromSqlite, argv.join(' '));
      return fromPostgres;
    };
    const dry = await both(['rewind', '--after', 'run:1', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(dry.stdout.split('\n'), [
      'would discard run 3: account primary, observed at 2026-01-01T00:05:02.123Z, 1 tiers, 2 changes',
      'would discard run 4: account primary, observed at 2026-01-01T00:10:02.123Z, 2 tiers, 2 changes',
      'would discard run 2: account sub-1, observed at 2026-01-01T00:00:02.123Z, 1 tiers, 1 changes',
      'dry run: 3 run(s) observed after 2026-01-01T00:00:01.123Z would be discarded; nothing was changed',
      '',
    ]);
    // Stamped in the past (2026-01-01): real history, refused without --force.
    assert.equal((await both(['rewind', '--after', 'run:1'])).code, 2);
    assert.equal((await both(['rewind', '--after', 'run:99', '--force'])).code, 2);

    const pool = createPgPool(url);
    t.after(() => pool.end());
    const daemon = new LeaderLease(pool, { holder: 'daemon-a' });
    const epoch = await daemon.tryAcquire();
    assert.ok(epoch !== null);
    const refused = await ask(url, ['rewind', '--after', 'run:1', '--force']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /daemon-a leads .*nothing was rewound/);
    const ledger = async () =>
      (await pool.query('SELECT run_id, status, error_code FROM run_ledger ORDER BY run_id')).rows;
    assert.deepEqual(
      (await ledger()).map((row) => row.status),
      ['ok', 'ok', 'ok', 'ok'],
      'nothing was changed',
    );
    await daemon.release();

    const rewound = await both(['rewind', '--after', 'run:1', '--force']);
    assert.equal(rewound.code, 0, rewound.stderr);
    assert.match(
      rewound.stdout,
      /3 run\(s\) observed after .* discarded: \d+ change\(s\) and \d+ version\(s\) deleted/,
    );
    assert.deepEqual(await ledger(), [
      { run_id: 1, status: 'ok', error_code: null },
      { run_id: 2, status: 'failed', error_code: 'REWOUND' },
      { run_id: 3, status: 'failed', error_code: 'REWOUND' },
      { run_id: 4, status: 'failed', error_code: 'REWOUND' },
    ]);
    // The rewind led under the next epoch and let go at once; the old leader's epoch is over.
    const lease = (await pool.query('SELECT holder, epoch, expires_at <= clock_timestamp() AS ended FROM leader_lease'))
      .rows[0];
    assert.equal(lease.epoch, epoch + 1);
    assert.equal(lease.ended, true);
    assert.notEqual(lease.holder, 'daemon-a');
    for (const argv of [
      ['snapshot', '--format', 'json'],
      ['changes', '--format', 'json'],
      ['history', 'META-USD', '--format', 'json'],
    ]) {
      const answer = await both(argv);
      assert.equal(answer.code, 0, answer.stderr);
    }
  });
});
