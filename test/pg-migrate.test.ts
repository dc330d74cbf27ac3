/**
 * Postgres migrations are safe to race (issue 15): drizzle's migrator takes no lock, so
 * src/store/pg/migrate.ts serialises it with an advisory lock. Three processes migrating one fresh
 * database at the same instant all succeed and each migration is applied exactly once; migrating
 * again applies nothing; a database holding a migration this tierwatch does not know is refused.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readJournal } from '../src/store/migrations.ts';
import { isTierwatchError } from '../src/errors.ts';
import { connectPg, describePgUrl } from '../src/store/pg/connection.ts';
import { defaultPgMigrationsFolder, migratePostgres, MIGRATION_LOCK_KEY } from '../src/store/pg/migrate.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';
import { raceProcesses } from './helpers/race.ts';

after(stopPgServer);

const RACER = path.resolve(import.meta.dirname, 'helpers', 'pg-migrate-racer.ts');
const ROUNDS = 3;
const CONTENDERS = 3;

interface Outcome {
  pid: number;
  applied?: number;
  total?: number;
  code?: string;
  message?: string;
}

function race(url: string): Promise<Outcome[]> {
  // Far enough ahead for every contender to have loaded Node, pg and drizzle on a loaded machine.
  return raceProcesses<Outcome>(RACER, url, 2500, CONTENDERS);
}

test(
  `${ROUNDS} rounds of ${CONTENDERS} processes migrating one fresh database at once: all succeed, each migration applied once`,
  { timeout: 240_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const journal = readJournal(defaultPgMigrationsFolder());
    assert.ok(journal.length > 0);
    for (let round = 0; round < ROUNDS; round += 1) {
      const url = await server.createDatabase('race');
      const outcomes = await race(url);
      assert.deepEqual(
        outcomes.filter((o) => o.code !== undefined),
        [],
        `round ${round}: every migrator succeeds`,
      );
      assert.equal(
        outcomes.reduce((sum, o) => sum + (o.applied ?? 0), 0),
        journal.length,
        `round ${round}: the migrations were applied once in all`,
      );
      assert.ok(
        outcomes.every((o) => o.total === journal.length),
        `round ${round}: each saw the full schema`,
      );
      const client = await connectPg(url);
      try {
        const applied = await client.query<{ hash: string; n: number }>(
          'SELECT hash, count(*)::int AS n FROM drizzle.__drizzle_migrations GROUP BY hash',
        );
        assert.equal(applied.rows.length, journal.length);
        assert.ok(
          applied.rows.every((row) => row.n === 1),
          `round ${round}: no migration recorded twice`,
        );
        const tables = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'tier_version'`,
        );
        assert.equal(tables.rows[0]?.n, 1);
        const held = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`,
        );
        assert.equal(held.rows[0]?.n, 0, 'the migration lock is released');
      } finally {
        await client.end();
      }
    }
  },
);

test(
  'migrating again applies nothing; a migration this tierwatch does not know is DB_SCHEMA_TOO_NEW; a held lock times out as DB_LOCKED',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const url = await server.createDatabase('again');
    const journal = readJournal(defaultPgMigrationsFolder());
    assert.deepEqual(await migratePostgres(url), { applied: journal.length, total: journal.length });
    assert.deepEqual(await migratePostgres(url), { applied: 0, total: journal.length });

    const client = await connectPg(url);
    try {
      // Another tierwatch holding the migration lock: this one gives up after its wait, naming why.
      await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      await assert.rejects(
        migratePostgres(url, { lockWaitMs: 300 }),
        (error) => isTierwatchError(error, 'DB_LOCKED') && /another tierwatch/.test(error.message),
      );
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);

      await client.query(`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('from-the-future', $1)`, [
        Date.now() + 86_400_000,
      ]);
      await assert.rejects(migratePostgres(url), (error) => {
        assert.ok(isTierwatchError(error, 'DB_SCHEMA_TOO_NEW'));
        assert.doesNotMatch(error.message, /password/);
        return true;
      });
    } finally {
      await client.end();
    }
  },
);

test('a Postgres URL is printed without its password or query parameters', () => {
  assert.equal(
    describePgUrl('postgres://tierwatch:s3cret@db.example:5432/history?sslpassword=x&password=y'),
    'postgres://tierwatch@db.example:5432/history',
  );
  assert.equal(describePgUrl('postgresql://db.example/history'), 'postgresql://db.example/history');
  assert.doesNotMatch(describePgUrl('postgres://u:p%40ss@h/d'), /p%40ss|p@ss/);
});
