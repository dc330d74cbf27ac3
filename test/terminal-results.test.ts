/**
 * One honest line of result (issue 13): `collect` on a terminal ends with what the sweep did, per
 * account; `migrate` says whether it applied migrations or found the database up to date.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMigrationsFolder } from '../src/store/db.ts';
import { readJournal } from '../src/store/migrations.ts';
import { runCliCaptured, startHarness } from './helpers/harness.ts';

test('collect on a terminal ends with one line per account: tiers, changes and run, or the failure', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    const env = { ...h.env, TIERWATCH_SWEEP_RETRIES: '0' };
    const first = await runCliCaptured(['collect'], { env, tty: true });
    assert.equal(first.code, 0, first.stderr);
    const tiers = h.sim.tiers().length;
    assert.equal(first.stdout, `sweep ok: account primary, ${tiers} tiers, ${tiers} changes, run 1\n`);

    const piped = await runCliCaptured(['collect'], { env });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, '', 'a pipe gets nothing on stdout, as before');

    await h.sim.close();
    const failed = await runCliCaptured(['collect'], { env, tty: true });
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /^sweep failed: account primary, QFEX_CONNECT: .+, run 3\n$/);
  } finally {
    await h.close();
  }
});

test('migrate says how many migrations it applied, then that the database is up to date', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-migrate-'));
  try {
    const dbPath = join(dir, 'new.db');
    const count = readJournal(defaultMigrationsFolder()).length;
    const first = await runCliCaptured(['migrate'], { env: { TIERWATCH_DB: dbPath, LOG_LEVEL: 'silent' } });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(
      first.stdout,
      `database ${dbPath}: applied ${count} migration${count === 1 ? '' : 's'}; it is now up to date\n`,
    );
    const again = await runCliCaptured(['migrate'], { env: { TIERWATCH_DB: dbPath, LOG_LEVEL: 'silent' } });
    assert.equal(again.stdout, `database ${dbPath} is up to date (nothing to apply)\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
