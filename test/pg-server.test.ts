/**
 * The Postgres the tests run against (test/helpers/pg-server.ts): a real server on loopback only,
 * a fresh empty database per call, UTF-8. Under CI=true a missing Postgres fails here.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';

after(stopPgServer);

test('the test Postgres: loopback only, UTF-8, a fresh empty database per call', { timeout: 120_000 }, async (t) => {
  const server = await postgresOrSkip(t);
  if (server === null) return;
  const first = await server.createDatabase();
  const second = await server.createDatabase();
  assert.notEqual(first, second);
  const client = new pg.Client({ connectionString: first });
  await client.connect();
  try {
    const settings = await client.query<{ listen: string; encoding: string; tables: string }>(
      `SELECT current_setting('listen_addresses') AS listen, current_setting('server_encoding') AS encoding,
              (SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')::text AS tables`,
    );
    assert.deepEqual(settings.rows[0], { listen: '127.0.0.1', encoding: 'UTF8', tables: '0' });
  } finally {
    await client.end();
  }
});
