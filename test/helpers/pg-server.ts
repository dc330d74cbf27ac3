/**
 * A real Postgres for the tests: ONE throwaway server per test process (test/helpers/pg-throwaway.ts:
 * Debian's `postgresql` package on a free loopback port, its own folder), and a fresh database per
 * test.
 *
 * - `TIERWATCH_TEST_PG_URL=postgres://user@host:port/db` reuses a running server instead (the
 *   database in the URL is only used to create the per-test databases).
 * - `TIERWATCH_TEST_PG_BIN` names the folder of initdb/pg_ctl; otherwise the newest
 *   /usr/lib/postgresql/N/bin, then PATH.
 * - Without Postgres a test is skipped with a message saying how to install it, except under
 *   CI=true, where it fails: CI installs Postgres (.ci/run), so a missing one is a broken CI.
 *
 * The server is stopped by its PID (`stopPgServer`, from an `after` hook), and a detached watchdog
 * stops it and deletes its folder if the test process dies without doing so.
 */
import type { TestContext } from 'node:test';
import { findPgBin, serverAt, startThrowawayPostgres, type PgServer, type ThrowawayPostgres } from './pg-throwaway.ts';

export { findPgBin, type PgServer } from './pg-throwaway.ts';

let started: Promise<ThrowawayPostgres> | undefined;

/**
 * The shared test server, or null after marking the test skipped when Postgres is missing outside
 * CI. Under CI=true a missing Postgres fails the test.
 */
export async function postgresOrSkip(t: TestContext): Promise<PgServer | null> {
  if (process.env.TIERWATCH_TEST_PG_URL === undefined && findPgBin() === undefined) {
    const how =
      'Postgres is not installed (apt-get install -y --no-install-recommends postgresql, or set TIERWATCH_TEST_PG_BIN or TIERWATCH_TEST_PG_URL)';
    if (process.env.CI === 'true') throw new Error(`${how}; CI=true requires it (.ci/run installs it)`);
    t.skip(`${how}; CI=true makes this a failure`);
    return null;
  }
  return (await startOnce()).server;
}

/** Stops the server this process started (by its PID) and deletes its folder; a no-op otherwise. */
export async function stopPgServer(): Promise<void> {
  const current = started;
  started = undefined;
  if (current !== undefined) await (await current).stop();
}

function startOnce(): Promise<ThrowawayPostgres> {
  started ??=
    process.env.TIERWATCH_TEST_PG_URL !== undefined
      ? Promise.resolve(reuse(process.env.TIERWATCH_TEST_PG_URL))
      : startThrowawayPostgres();
  return started;
}

function reuse(url: string): ThrowawayPostgres {
  return { server: serverAt(url), stop: async () => {} };
}
