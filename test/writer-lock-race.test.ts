/**
 * The writer lock names its holder, whatever the timing (issue 11): contenders that start at the
 * same instant on a fresh lock file, again and again. A refused one used to read the holder in the
 * winner's gap between its two lock steps and say "another tierwatch process"; now every refusal
 * names the process that holds the lock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { raceProcesses } from './helpers/race.ts';

const RACER = path.resolve(import.meta.dirname, 'helpers', 'lock-racer.ts');
const ROUNDS = 6;
const CONTENDERS = 3;

interface Outcome {
  pid: number;
  won: boolean;
  code?: string;
  message?: string;
}

function race(dbPath: string): Promise<Outcome[]> {
  // Far enough ahead for every contender to have loaded Node and better-sqlite3 on a loaded machine.
  return raceProcesses<Outcome>(RACER, dbPath, 1200, CONTENDERS);
}

test(
  `${ROUNDS} rounds of ${CONTENDERS} processes taking one fresh writer lock at once: one wins, every other names the winner`,
  { timeout: 240_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-lockrace-'));
    try {
      const unnamed: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const outcomes = await race(path.join(dir, `round-${round}.db`));
        const winners = outcomes.filter((outcome) => outcome.won);
        // A contender that came after the winner released may win too; the 0.8 s hold makes that rare.
        assert.ok(winners.length >= 1, `round ${round}: nobody won: ${JSON.stringify(outcomes)}`);
        for (const loser of outcomes.filter((outcome) => !outcome.won)) {
          assert.equal(loser.code, 'DB_LOCKED', loser.message);
          if (!winners.some((winner) => loser.message!.includes(`(pid ${winner.pid} `))) {
            unnamed.push(`round ${round}: ${loser.message}`);
          }
        }
      }
      assert.deepEqual(unnamed, [], 'every refusal names the holder');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
