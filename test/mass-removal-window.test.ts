/**
 * Slow erosion (issue 10): the mass-removal guard compares each sweep with the account's largest
 * sweep of the last 24 h, not only with the one before. 20 → 11 → 6 → 3 → 2 → 1 tiers, each step
 * removing at most half of the step before, used to pass; through the CLI against the simulator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCliCaptured, startHarness } from './helpers/harness.ts';
import { openDatabase } from '../src/store/db.ts';
import { makeTier } from '../src/sim/index.ts';

const SYMBOLS = ['AAA-USD', 'BBB-USD', 'CCC-USD', 'DDD-USD', 'EEE-USD'];
/** 20 tiers: five symbols with four leverages each. */
const UNIVERSE = SYMBOLS.flatMap((symbol) => [1, 5, 10, 20].map((leverage) => makeTier(symbol, leverage, 1_000_000)));

test('20 → 11 → 6 → 3 → 2 → 1 tiers: the erosion is refused from 6 on, and one run with a raised ratio accepts it for good', async () => {
  const h = await startHarness({ universe: { primary: UNIVERSE } });
  try {
    h.db.close();
    const collect = async (extra: Record<string, string> = {}) =>
      runCliCaptured(['collect'], { env: { ...h.env, ...extra } });
    /** The simulator removes tiers until `count` are left. */
    const shrinkTo = (count: number) => {
      for (const tier of h.sim.tiers().slice(count)) h.sim.removeTier('primary', tier.symbol, tier.leverage);
      assert.equal(h.sim.tiers().length, count);
    };
    const current = () => {
      const db = openDatabase(h.dbPath, { readonly: true });
      try {
        return db.sqlite.prepare('SELECT count(*) FROM tiers_current').pluck().get() as number;
      } finally {
        db.close();
      }
    };
    const lastRun = () => {
      const db = openDatabase(h.dbPath, { readonly: true });
      try {
        return db.sqlite
          .prepare('SELECT status, error_code, error_message FROM runs ORDER BY run_id DESC LIMIT 1')
          .get() as {
          status: string;
          error_code: string | null;
          error_message: string | null;
        };
      } finally {
        db.close();
      }
    };

    assert.equal((await collect()).code, 0);
    assert.equal(current(), 20);
    shrinkTo(11);
    assert.equal((await collect()).code, 0, '9 of 20 removed: under half, stored');
    assert.equal(current(), 11);

    for (const count of [6, 3, 2, 1]) {
      shrinkTo(count);
      const result = await collect();
      assert.equal(result.code, 1, `${count} tiers: refused`);
      const run = lastRun();
      assert.equal(run.error_code, 'MASS_REMOVAL', `${count} tiers`);
      assert.equal(current(), 11, 'nothing was stored');
      if (count === 6) {
        // 5 of the 11 current tiers is under half: only the window catches it.
        assert.match(
          run.error_message!,
          /finds 6 tiers, 14 fewer than the 20 of its largest sweep in the last 24 h \(more than 50% gone\); nothing was stored/,
        );
      }
    }

    // A real delisting: raised for one run, as docs/configuration.md says, then accepted — not refused again
    // for the rest of the window.
    assert.equal((await collect({ TIERWATCH_MAX_REMOVAL_RATIO: '1' })).code, 0);
    assert.equal(current(), 1);
    assert.equal((await collect()).code, 0, 'the next sweep with the default ratio is not jammed');
    assert.equal(lastRun().status, 'ok');
  } finally {
    await h.close();
  }
});
