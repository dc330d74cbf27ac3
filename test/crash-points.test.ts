/**
 * Deterministic crashes: `tierwatch collect` as a child process kills itself with SIGKILL at a named
 * point (TIERWATCH_TEST_CRASH_AT, src/collect/crash-points.ts): inside the sweep's write
 * transaction, between two pages, and right after the commit. Afterwards the database passes
 * `PRAGMA integrity_check`, no partial sweep shows in any view, the interrupted run stays `running`
 * until the next start marks it `abandoned`, and the next collect records exactly the true changes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from '../src/store/db.ts';
import type { SimTier } from '../src/sim/index.ts';
import { startHarness, type Harness } from './helpers/harness.ts';
import {
  historyDumpOf,
  historyViolations,
  integrityOf,
  ledger,
  netChanges,
  recordedChanges,
  spawnCli,
  currentTiers,
  simCurrent,
} from './helpers/faults.ts';

let h: Harness;
let env: Record<string, string>;
/** The simulator's tiers as the history last recorded them. */
let recorded: SimTier[] = [];

function withDb<T>(work: (sqlite: ReturnType<typeof openDatabase>['sqlite']) => T): T {
  const db = openDatabase(h.dbPath, { readonly: true });
  try {
    return work(db.sqlite);
  } finally {
    db.close();
  }
}

function changesOfRun(runId: number): string[] {
  return withDb((sqlite) =>
    recordedChanges(
      sqlite.prepare('SELECT change, symbol, leverage FROM tier_changes WHERE run_id = ?').all(runId) as never,
    ),
  );
}

async function collect(extraEnv: Record<string, string> = {}): Promise<{ code: number | string; stderr: string }> {
  const child = spawnCli(['collect'], { ...env, ...extraEnv });
  const code = await child.exited;
  return { code, stderr: child.stderr() };
}

before(async () => {
  h = await startHarness();
  h.db.close(); // the child processes are the writers
  env = { ...h.env, TIERWATCH_PAGE_SIZE: '10', LOG_LEVEL: 'info' };
  const first = await collect();
  assert.equal(first.code, 0, first.stderr);
  recorded = h.sim.tiers();
});

after(async () => {
  await h.close();
});

let round = 0;
function trueChange(): void {
  round += 1;
  const tiers = h.sim.tiers();
  const target = tiers[round * 5]!;
  h.sim.editTier('primary', target.symbol, target.leverage, { max_notional: target.max_notional + 500 });
  h.sim.listSymbol('primary', `CRASH${round}-USD`, { levels: [1, 3] });
  h.sim.removeTier('primary', tiers[round * 5 + 2]!.symbol, tiers[round * 5 + 2]!.leverage);
}

for (const point of ['in-transaction', 'between-pages'] as const) {
  test(`SIGKILL ${point}: nothing partial is visible, the run is abandoned at the next start, and the next collect records the true changes`, async () => {
    trueChange();
    const before = historyDumpOf(h.dbPath);
    const crashed = await collect({ TIERWATCH_TEST_CRASH_AT: point });
    assert.equal(crashed.code, 'SIGKILL', crashed.stderr);
    assert.match(crashed.stderr, new RegExp(`TIERWATCH_TEST_CRASH_AT=${point}`));

    assert.equal(integrityOf(h.dbPath), 'ok');
    assert.deepEqual(historyDumpOf(h.dbPath), before, 'no partial sweep in tier_versions or tier_changes');
    const interrupted = withDb((sqlite) => ledger(sqlite).at(-1)!);
    assert.equal(interrupted.status, 'running', 'the killed run stays running until the next start');
    withDb((sqlite) => {
      assert.deepEqual(historyViolations(sqlite), []);
      assert.deepEqual(currentTiers(sqlite), simCurrent(recorded), 'tiers_current still shows the last complete sweep');
    });
    if (point === 'between-pages') {
      assert.equal(h.sim.stats.lastRequests.at(-1)?.page, 1, 'killed after the first page');
    }

    const next = await collect();
    assert.equal(next.code, 0, next.stderr);
    const runs = withDb((sqlite) => ledger(sqlite));
    assert.equal(runs.find((run) => run.run_id === interrupted.run_id)?.status, 'abandoned');
    const resumed = runs.at(-1)!;
    assert.equal(resumed.status, 'ok');
    assert.deepEqual(changesOfRun(resumed.run_id), netChanges(recorded, h.sim.tiers()));
    recorded = h.sim.tiers();
    withDb((sqlite) => assert.deepEqual(currentTiers(sqlite), simCurrent(recorded)));
  });
}

test('SIGKILL right after the commit: the sweep is stored whole and its run is ok (the ledger row commits with it)', async () => {
  trueChange();
  const crashed = await collect({ TIERWATCH_TEST_CRASH_AT: 'after-commit' });
  assert.equal(crashed.code, 'SIGKILL', crashed.stderr);
  assert.equal(integrityOf(h.dbPath), 'ok');
  const run = withDb((sqlite) => ledger(sqlite).at(-1)!);
  // The run's 'ok' is written inside the sweep's transaction: there is no window in which the
  // history holds a sweep whose run is not ok.
  assert.equal(run.status, 'ok');
  assert.deepEqual(changesOfRun(run.run_id), netChanges(recorded, h.sim.tiers()));
  recorded = h.sim.tiers();
  withDb((sqlite) => assert.deepEqual(historyViolations(sqlite), []));

  const next = await collect();
  assert.equal(next.code, 0, next.stderr);
  const last = withDb((sqlite) => ledger(sqlite).at(-1)!);
  assert.equal(last.status, 'ok');
  assert.equal(last.changes, 0, 'nothing changed since the killed (but complete) sweep');
  assert.deepEqual(
    withDb((sqlite) => ledger(sqlite).filter((row) => row.status === 'running')),
    [],
    'no run is left running',
  );
});
