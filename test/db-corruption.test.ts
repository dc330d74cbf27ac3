/**
 * A corrupt database is DB_CORRUPT from every command (issue 11): exit 1, one line, no stack, never
 * "(this is a bug)", never data as if nothing were wrong. The history's pages after the first are
 * overwritten with garbage: the last pages, where the latest rows and index entries are (the
 * schema is intact, so SQLite opens the file and only a check that reads the pages notices), or
 * everything after page 1. A file whose first bytes are gone is caught by
 * the header check before SQLite reads it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { sweepAccount } from '../src/collect/sweep.ts';
import { seededRandom } from '../src/sim/random.ts';
import { runCliCaptured, startHarness, type Harness } from './helpers/harness.ts';

const COMMANDS: string[][] = [
  ['snapshot', '--format', 'json'],
  ['changes', '--format', 'json'],
  ['diff', 'run:1', '--format', 'json'],
  ['query', 'SELECT count(*) AS n FROM tiers_current', '--format', 'json'],
  ['runs', '--format', 'json'],
  ['health'],
  ['collect'],
];

/** A history of a few hundred tiers over two runs, closed (WAL checkpointed into the file). */
async function history(h: Harness): Promise<void> {
  for (let i = 0; i < 80; i++) h.sim.listSymbol('primary', `BULK${i}-USD`, { levels: [1, 2, 3, 5, 10] });
  assert.ok((await sweepAccount(h.config(), 'primary', h)).ok);
  h.sim.editTier('primary', 'META-USD', '20', { max_notional: 4242 });
  assert.ok((await sweepAccount(h.config(), 'primary', h)).ok);
  h.db.close();
}

/** Overwrites whole pages from `firstPage` (1-based; negative: that many from the end) to the end with seeded garbage. */
function garble(dbPath: string, from: number, seed: number): void {
  const header = Buffer.alloc(100);
  const fd = fs.openSync(dbPath, 'r+');
  try {
    fs.readSync(fd, header, 0, 100, 0);
    const pageSize = header.readUInt16BE(16);
    const pages = Math.floor(fs.fstatSync(fd).size / pageSize);
    const firstPage = from > 0 ? from : pages + from + 1;
    assert.ok(pages > firstPage + 5, `a history of ${pages} pages`);
    const random = seededRandom(seed);
    const garbage = Buffer.alloc(pageSize);
    for (let page = firstPage; page <= pages; page++) {
      for (let i = 0; i < pageSize; i++) garbage[i] = Math.floor(random() * 256);
      fs.writeSync(fd, garbage, 0, pageSize, (page - 1) * pageSize);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function assertCorruptReported(args: string[], result: { code: number; stdout: string; stderr: string }): void {
  const name = args[0];
  assert.equal(result.code, 1, `${name}: ${result.stderr}`);
  assert.equal(result.stdout, '', `${name} printed no data`);
  assert.equal(result.stderr.trim().split('\n').length, 1, `${name}: one line: ${result.stderr}`);
  assert.match(result.stderr, new RegExp(`^tierwatch ${name}: .*corrupt`), name);
  assert.doesNotMatch(result.stderr, /this is a bug|\n\s+at /, name);
}

test(
  'the last pages overwritten with garbage: every command says DB_CORRUPT in one line, exit 1 (found at open by quick_check)',
  { timeout: 240_000 },
  async () => {
    const h = await startHarness();
    try {
      await history(h);
      garble(h.dbPath, -8, 11);
      for (const args of COMMANDS) {
        const result = await runCliCaptured(args, { env: { ...h.env, LOG_LEVEL: 'silent' } });
        assertCorruptReported(args, result);
        assert.match(result.stderr, /quick_check/, args[0]);
      }
    } finally {
      await h.close().catch(() => undefined);
    }
  },
);

test(
  'every page after the first overwritten: every command says DB_CORRUPT in one line, exit 1',
  { timeout: 240_000 },
  async () => {
    const h = await startHarness();
    try {
      await history(h);
      garble(h.dbPath, 2, 13);
      for (const args of COMMANDS) {
        const result = await runCliCaptured(args, { env: { ...h.env, LOG_LEVEL: 'silent' } });
        assertCorruptReported(args, result);
      }
    } finally {
      await h.close().catch(() => undefined);
    }
  },
);

test(
  'a file whose first page is garbage is refused by the header check, before SQLite reads it',
  { timeout: 120_000 },
  async () => {
    const h = await startHarness();
    try {
      await history(h);
      garble(h.dbPath, 1, 12);
      const before = fs.readFileSync(h.dbPath);
      for (const args of [['runs', '--format', 'json'], ['collect']]) {
        const result = await runCliCaptured(args, { env: { ...h.env, LOG_LEVEL: 'silent' } });
        assertCorruptReported(args, result);
        assert.match(result.stderr, /its first bytes are not a SQLite header/);
      }
      assert.ok(fs.readFileSync(h.dbPath).equals(before), 'left as it was');
    } finally {
      await h.close().catch(() => undefined);
    }
  },
);
