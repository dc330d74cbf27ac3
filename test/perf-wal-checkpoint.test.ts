/**
 * The WAL checkpoint after each sweep (issue 6): SQLite's automatic checkpoint no longer runs inside
 * a sweep's COMMIT, so the sweep checkpoints afterwards. These tests hold the consequences: the
 * sweep's pages reach the database file, the WAL is reused instead of growing, and a reader sees
 * the committed sweep at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { sweepAccount } from '../src/collect/sweep.ts';
import { openDatabase } from '../src/store/db.ts';
import { startHarness } from './helpers/harness.ts';

const fileDigest = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const walBytes = (dbPath: string) => (fs.existsSync(`${dbPath}-wal`) ? fs.statSync(`${dbPath}-wal`).size : 0);

test('a successful sweep copies its WAL into the database file before it returns', async () => {
  const h = await startHarness();
  try {
    h.db.checkpoint();
    const before = fileDigest(h.dbPath);
    const result = await sweepAccount(h.config(), 'primary', h);
    assert.ok(result.ok);
    // Without the checkpoint every page of the sweep would still be in the WAL only (far below
    // SQLite's own threshold), and the database file would be byte for byte as before. (Its size
    // proves nothing: the sweep may fill pages the migrations freed when they rebuilt tables.)
    assert.notEqual(fileDigest(h.dbPath), before, 'the database file holds the sweep');
    const reader = openDatabase(h.dbPath, { readonly: true });
    try {
      const rows = reader.sqlite
        .prepare(`SELECT count(*) FROM tiers_current WHERE account_id = 'primary'`)
        .pluck()
        .get();
      assert.equal(rows, h.sim.tiers().length);
    } finally {
      reader.close();
    }
  } finally {
    await h.close();
  }
});

test('the WAL does not grow from sweep to sweep: each sweep reuses the space the last one checkpointed', async () => {
  const h = await startHarness();
  try {
    const config = h.config();
    // The first sweep writes every tier: the largest WAL of the test.
    assert.ok((await sweepAccount(config, 'primary', h)).ok);
    const afterFirst = walBytes(h.dbPath);
    assert.ok(afterFirst > 0);
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 20; i++) h.sim.listSymbol('primary', `W${round}X${i}-USD`, { levels: [1, 2, 5] });
      const result = await sweepAccount(config, 'primary', h);
      assert.ok(result.ok && result.changes.length === 60, 'each round adds 60 tiers');
    }
    // Twelve rounds of 60 new tiers write more frames than the first sweep did; appended to one
    // another (no checkpoint) they would have grown the WAL well past it.
    assert.ok(
      walBytes(h.dbPath) <= afterFirst,
      `WAL ${walBytes(h.dbPath)} B after the rounds, ${afterFirst} B after the first sweep`,
    );
  } finally {
    await h.close();
  }
});
