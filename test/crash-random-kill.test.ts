/**
 * Random SIGKILLs of a busy daemon: `tierwatch run` on a one-second schedule against a simulator
 * whose tiers keep changing (a seeded change script, a few steps as each sweep starts) and whose
 * list is long enough that a sweep takes a good share of the second. A bounded number of rounds, each killing the daemon at a seeded
 * random moment (half of them shortly after a sweep started, so the kill lands mid-sweep or
 * mid-commit). After every kill: `PRAGMA integrity_check` is ok, no version or change belongs to a
 * run that did not end ok, no tier has two open versions; the next start marks the killed run
 * abandoned; and a final collect converges on the simulator's state.
 *
 * The seed is printed; rerun with TIERWATCH_CRASH_SEED=<seed> to reproduce, and set
 * TIERWATCH_CRASH_ROUNDS for a longer run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { openDatabase } from '../src/store/db.ts';
import { startChangeScript, syntheticUniverse } from '../src/sim/index.ts';
import { seededRandom } from '../src/sim/random.ts';
import { startHarness } from './helpers/harness.ts';
import { currentTiers, historyViolations, integrityOf, ledger, simCurrent, spawnCli } from './helpers/faults.ts';

const SEED = Number(process.env.TIERWATCH_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = Number(process.env.TIERWATCH_CRASH_ROUNDS ?? 4);

test(`random SIGKILLs of a busy daemon (seed ${SEED}, ${ROUNDS} rounds) never leave a partial or corrupt history`, async (t) => {
  t.diagnostic(`seed ${SEED} (TIERWATCH_CRASH_SEED=${SEED} reproduces the kill moments)`);
  console.log(`crash-random-kill: seed ${SEED}`);
  const random = seededRandom(SEED);
  const h = await startHarness({ universe: { primary: syntheticUniverse(3000, SEED) }, maxPageSize: 150 });
  // Paced by the sweeps, not by the clock: a step every 40 ms (as this test once had) shifts the list
  // under a sweep that a loaded machine pages slowly on every pass, so every sweep failed with
  // PAGINATION_INCONSISTENT and the daemon made no progress. Steps applied as a sweep starts may
  // still land under its first pass (one restart), and every sweep has changes to commit.
  const script = startChangeScript(h.sim, { everyMs: 86_400_000, seed: SEED });
  const STEPS_PER_SWEEP = 3;
  const paceBySweeps = (daemon: ReturnType<typeof spawnCli>) => {
    let stepped = 0;
    daemon.child.stderr!.on('data', () => {
      const started = daemon.stderr().split('"msg":"sweep started"').length - 1;
      for (; stepped < started; stepped++) for (let i = 0; i < STEPS_PER_SWEEP; i++) script.step();
    });
  };
  try {
    h.db.close();
    const env = { ...h.env, TIERWATCH_SCHEDULE: '* * * * * *', LOG_LEVEL: 'debug', TIERWATCH_MAX_REMOVAL_RATIO: '1' };
    const killedRuns: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const daemon = spawnCli(['run'], env);
      paceBySweeps(daemon);
      await daemon.waitFor('"msg":"daemon started"');
      // However slow the machine, the daemon completes a sweep before the first kill.
      if (round === 1) await daemon.waitFor('"msg":"sweep ok');
      const midSweep = random() < 0.5;
      if (midSweep) {
        // Shortly after the next sweep starts: while it pages, or while it commits.
        const seen = daemon.stderr().split('"msg":"sweep started"').length;
        while (daemon.stderr().split('"msg":"sweep started"').length === seen) await delay(5);
        await delay(Math.floor(random() * 60));
      } else {
        await delay(Math.floor(random() * 1500));
      }
      daemon.child.kill('SIGKILL');
      assert.equal(await daemon.exited, 'SIGKILL');

      assert.equal(integrityOf(h.dbPath), 'ok', `round ${round}`);
      const db = openDatabase(h.dbPath, { readonly: true });
      try {
        assert.deepEqual(historyViolations(db.sqlite), [], `round ${round}`);
        const runs = ledger(db.sqlite);
        const running = runs.filter((run) => run.status === 'running');
        assert.ok(running.length <= 1, `only the killed run may be running, found ${running.length}`);
        for (const earlier of killedRuns) {
          assert.equal(runs.find((run) => run.run_id === earlier)?.status, 'abandoned', `run ${earlier}`);
        }
        killedRuns.push(...running.map((run) => run.run_id));
        t.diagnostic(
          `round ${round}: killed ${midSweep ? 'after a sweep started' : 'at a random moment'}; ${runs.length} runs, ${running.length} left running`,
        );
      } finally {
        db.close();
      }
    }
    script.stop();
    const final = spawnCli(['collect'], env);
    assert.equal(await final.exited, 0, final.stderr());
    const db = openDatabase(h.dbPath, { readonly: true });
    try {
      const runs = ledger(db.sqlite);
      for (const earlier of killedRuns) assert.equal(runs.find((run) => run.run_id === earlier)?.status, 'abandoned');
      assert.deepEqual(
        runs.filter((run) => run.status === 'running'),
        [],
      );
      assert.ok(runs.filter((run) => run.status === 'ok').length >= 2, 'the daemon made progress between kills');
      assert.deepEqual(currentTiers(db.sqlite), simCurrent(h.sim.tiers()), 'collection resumed and converged');
      assert.deepEqual(historyViolations(db.sqlite), []);
    } finally {
      db.close();
    }
  } finally {
    script.stop();
    await h.close();
  }
});
