/**
 * Upgrading a 0.1.0 database: the migration that adds the `dead` status recreates alert_outbox
 * (SQLite cannot alter a CHECK constraint). Its pending and delivered rows survive with their ids,
 * attempts and errors, and a notification 0.1.0 left pending is delivered by the new version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultMigrationsFolder, openDatabase } from '../src/store/db.ts';
import { Receiver } from './alerts-fixture.ts';
import { runCliCaptured, startHarness } from './helpers/harness.ts';

/** The migrations 0.1.0 shipped: 0000 to 0002. */
function migrationsOf010(dir: string): string {
  const folder = join(dir, 'migrations-0.1.0');
  cpSync(defaultMigrationsFolder(), folder, { recursive: true });
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: Array<{ idx: number; tag: string }> };
  const kept = journal.entries.filter((entry) => entry.idx <= 2);
  for (const file of readdirSync(folder)) {
    if (file.endsWith('.sql') && !kept.some((entry) => `${entry.tag}.sql` === file)) rmSync(join(folder, file));
  }
  writeFileSync(journalPath, JSON.stringify({ ...journal, entries: kept }));
  return folder;
}

test('a 0.1.0 outbox keeps its rows through the upgrade, and its pending notification is delivered', async () => {
  const h = await startHarness();
  const receiver = new Receiver();
  await receiver.listen();
  try {
    h.db.close();
    rmSync(h.dbPath, { force: true });
    const old = openDatabase(h.dbPath, { migrationsFolder: migrationsOf010(h.dir) });
    old.sqlite.exec(
      `INSERT INTO run_ledger (account_id, endpoint, started_at, status) VALUES ('primary', '${h.sim.url}', '2026-11-30T00:00:00.000Z', 'ok')`,
    );
    const insert = old.sqlite.prepare(
      `INSERT INTO alert_outbox (notification_id, kind, url, format, run_id, created_at, body, status, attempts, last_attempt_at, last_error, delivered_at)
       VALUES (?, ?, ?, 'json', ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run(
      'old-delivered',
      'stale',
      receiver.url,
      null,
      '2026-11-30T00:00:00.000Z',
      '{"type":"stale"}',
      'delivered',
      1,
      '2026-11-30T00:00:01.000Z',
      null,
      '2026-11-30T00:00:01.000Z',
    );
    const pendingCreated = new Date().toISOString();
    insert.run(
      'old-pending',
      'changes',
      receiver.url,
      1,
      pendingCreated,
      '{"type":"changes","from":"0.1.0"}',
      'pending',
      7,
      pendingCreated,
      'answered HTTP 500',
      null,
    );
    const before = old.sqlite.prepare('SELECT * FROM alert_outbox ORDER BY outbox_id').all() as Array<
      Record<string, unknown>
    >;
    assert.throws(
      () => old.sqlite.prepare(`UPDATE alert_outbox SET status = 'dead'`).run(),
      /CHECK constraint failed/,
      '0.1.0 knows no dead status',
    );
    old.close();

    const migrated = await runCliCaptured(['migrate'], { env: h.env });
    assert.equal(migrated.code, 0, migrated.stderr);
    const db = openDatabase(h.dbPath);
    try {
      const after = db.sqlite.prepare('SELECT * FROM alert_outbox ORDER BY outbox_id').all() as Array<
        Record<string, unknown>
      >;
      assert.deepEqual(
        after,
        before.map((row) => ({ ...row, dead_at: null, dead_reason: null })),
      );
      assert.deepEqual(db.sqlite.pragma('foreign_key_check'), []);
      assert.deepEqual(db.sqlite.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
      const indexes = db.sqlite
        .prepare(
          `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alert_outbox' AND sql IS NOT NULL ORDER BY name`,
        )
        .pluck()
        .all();
      assert.deepEqual(indexes, ['alert_outbox_notification_url_uq', 'alert_outbox_pending_idx']);
      assert.throws(
        () => db.sqlite.prepare(`UPDATE alert_outbox SET status = 'gone' WHERE outbox_id = 1`).run(),
        /CHECK constraint failed/,
      );
    } finally {
      db.close();
    }

    // The new version delivers what 0.1.0 left pending, first. This history has no tiers yet, so
    // the new run is the account's baseline and sends nothing; the run after it sends its change.
    const env = { ...h.env, TIERWATCH_WEBHOOK_URL: receiver.url };
    const collected = await runCliCaptured(['collect'], { env });
    assert.equal(collected.code, 0, collected.stderr);
    assert.deepEqual(
      receiver.distinct().map((request) => request.headers['idempotency-key']),
      ['old-pending'],
    );
    assert.equal(receiver.requests[0]!.body, '{"type":"changes","from":"0.1.0"}');
    const first = h.sim.tiers()[0]!;
    h.sim.editTier('primary', first.symbol, first.leverage, { max_notional: first.max_notional / 2 });
    const next = await runCliCaptured(['collect'], { env });
    assert.equal(next.code, 0, next.stderr);
    assert.equal(receiver.distinct().length, 2);
    assert.equal(JSON.parse(receiver.distinct()[1]!.body).changes[0].symbol, first.symbol);
  } finally {
    await receiver.close();
    await h.close();
  }
});
