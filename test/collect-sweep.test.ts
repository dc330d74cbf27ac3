/**
 * The collector end to end: the simulator over a real socket, the real client and pager, and a real
 * SQLite file. Expected values come from the simulator's own state and change log, never from the
 * code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sweepAccount, sweepAll, type SweepResult } from '../src/collect/sweep.ts';
import { normalizeLeverage } from '../src/history/tier.ts';
import type { SimTier } from '../src/sim/index.ts';
import { startHarness, type Harness } from './helpers/harness.ts';

const SUBACCOUNT = '11111111-1111-1111-1111-111111111111';

function historyDump(h: Harness): unknown {
  const sqlite = h.db.sqlite;
  return {
    versions: sqlite.prepare('SELECT * FROM tier_versions ORDER BY account_id, symbol, leverage, valid_from').all(),
    changes: sqlite.prepare('SELECT * FROM tier_changes ORDER BY run_id, account_id, symbol, leverage').all(),
  };
}

function current(h: Harness, account = 'primary'): Array<Record<string, unknown>> {
  return h.db.sqlite
    .prepare(
      'SELECT symbol, leverage, initial_margin, maintenance_margin, max_notional FROM tiers_current WHERE account_id = ? ORDER BY symbol, leverage',
    )
    .all(account) as Array<Record<string, unknown>>;
}

function expected(tiers: SimTier[]): Array<Record<string, unknown>> {
  return tiers
    .map((tier) => ({
      symbol: tier.symbol,
      leverage: normalizeLeverage(tier.leverage)!,
      initial_margin: tier.initial_margin,
      maintenance_margin: tier.maintenance_margin,
      max_notional: tier.max_notional,
    }))
    .sort((a, b) => (a.symbol + '\u0000' + a.leverage < b.symbol + '\u0000' + b.leverage ? -1 : 1));
}

function run(h: Harness, runId: number): Record<string, unknown> {
  return h.db.sqlite.prepare('SELECT * FROM runs WHERE run_id = ?').get(runId) as Record<string, unknown>;
}

function assertOk(result: SweepResult): asserts result is Extract<SweepResult, { ok: true }> {
  if (!result.ok) assert.fail(`sweep failed: ${result.error.code}: ${result.error.message}`);
}

function assertFailed(result: SweepResult, code: string): void {
  assert.equal(result.ok, false, 'the sweep should have failed');
  if (!result.ok) assert.equal(result.error.code, code, result.error.message);
}

test('a first sweep through a server that caps pages records every tier as added', async () => {
  const h = await startHarness({ maxPageSize: 7 });
  try {
    const config = h.config();
    const result = await sweepAccount(config, 'primary', h);
    assertOk(result);
    const tiers = h.sim.tiers();
    assert.ok(tiers.length > 20, 'the default universe has several symbols and levels');
    assert.deepEqual(current(h), expected(tiers));
    // Pages were capped at 7 rows although 1000 were asked: the pager advanced by rows received.
    const requests = h.sim.stats.lastRequests.filter((request) => request.connection === h.sim.stats.connections);
    assert.ok(requests.every((request) => request.limit === 1000 && request.servedLimit === 7));
    assert.ok(requests.length >= Math.ceil(tiers.length / 6), `expected many pages, saw ${requests.length}`);
    const ledger = run(h, result.runId);
    assert.equal(ledger.status, 'ok');
    assert.equal(ledger.tiers, tiers.length);
    assert.equal(ledger.changes, tiers.length);
    assert.equal(ledger.public_key, 'qfex_pub_demo_tierwatch');
    assert.equal(ledger.observed_at, result.observedAt.toISOString());
    const kinds = h.db.sqlite.prepare('SELECT change, count(*) AS n FROM tier_changes GROUP BY change').all();
    assert.deepEqual(kinds, [{ change: 'added', n: tiers.length }]);
  } finally {
    await h.close();
  }
});

test('an unchanged sweep adds a ledger row and nothing else', async () => {
  const h = await startHarness();
  try {
    const config = h.config();
    assertOk(await sweepAccount(config, 'primary', h));
    const before = historyDump(h);
    const second = await sweepAccount(config, 'primary', h);
    assertOk(second);
    assert.deepEqual(second.changes, []);
    assert.deepEqual(historyDump(h), before);
    assert.equal(run(h, second.runId).status, 'ok');
    assert.equal(run(h, second.runId).changes, 0);
  } finally {
    await h.close();
  }
});

test('A → B → A is two changes and the B version survives', async () => {
  const h = await startHarness();
  try {
    const config = h.config();
    const first = await sweepAccount(config, 'primary', h);
    assertOk(first);
    const original = h.sim
      .tiers()
      .find((tier) => tier.symbol === 'META-USD' && normalizeLeverage(tier.leverage) === '20')!;
    h.sim.editTier('primary', 'META-USD', '20', { max_notional: 50_000 });
    const second = await sweepAccount(config, 'primary', h);
    assertOk(second);
    h.sim.editTier('primary', 'META-USD', '20', { max_notional: original.max_notional });
    const third = await sweepAccount(config, 'primary', h);
    assertOk(third);

    const changes = h.db.sqlite
      .prepare(
        "SELECT run_id, change, changed_columns, old_max_notional, new_max_notional FROM tier_changes WHERE symbol = 'META-USD' AND leverage = '20' AND change = 'changed' ORDER BY run_id",
      )
      .all();
    assert.deepEqual(changes, [
      {
        run_id: second.runId,
        change: 'changed',
        changed_columns: '["max_notional"]',
        old_max_notional: original.max_notional,
        new_max_notional: 50_000,
      },
      {
        run_id: third.runId,
        change: 'changed',
        changed_columns: '["max_notional"]',
        old_max_notional: 50_000,
        new_max_notional: original.max_notional,
      },
    ]);
    const versions = h.db.sqlite
      .prepare(
        "SELECT max_notional, valid_from, valid_to FROM tier_versions WHERE symbol = 'META-USD' AND leverage = '20' ORDER BY valid_from",
      )
      .all();
    assert.deepEqual(versions, [
      {
        max_notional: original.max_notional,
        valid_from: first.observedAt.toISOString(),
        valid_to: second.observedAt.toISOString(),
      },
      { max_notional: 50_000, valid_from: second.observedAt.toISOString(), valid_to: third.observedAt.toISOString() },
      { max_notional: original.max_notional, valid_from: third.observedAt.toISOString(), valid_to: null },
    ]);
  } finally {
    await h.close();
  }
});

test('a removed tier is closed once and a re-listed one is a new version', async () => {
  const h = await startHarness();
  try {
    const config = h.config();
    assertOk(await sweepAccount(config, 'primary', h));
    h.sim.removeTier('primary', 'AAPL-USD', '5');
    const removed = await sweepAccount(config, 'primary', h);
    assertOk(removed);
    assertOk(await sweepAccount(config, 'primary', h)); // still gone: no second "removed"
    h.sim.listSymbol('primary', 'NEW-USD', { levels: [1, 2] });
    const relisted = h.sim.tiers().find((tier) => tier.symbol === 'AAPL-USD') as SimTier;
    h.sim.addTier('primary', {
      ...relisted,
      leverage: '5',
      initial_margin: 0.2,
      maintenance_margin: 0.1,
      max_notional: 12_345,
    });
    const back = await sweepAccount(config, 'primary', h);
    assertOk(back);

    const aapl5 = h.db.sqlite
      .prepare("SELECT run_id, change FROM tier_changes WHERE symbol = 'AAPL-USD' AND leverage = '5' ORDER BY run_id")
      .all() as Array<{ run_id: number; change: string }>;
    assert.deepEqual(
      aapl5.map((row) => row.change),
      ['added', 'removed', 'added'],
    );
    assert.equal(aapl5[1]!.run_id, removed.runId);
    assert.equal(aapl5[2]!.run_id, back.runId);
    const versions = h.db.sqlite
      .prepare(
        "SELECT max_notional, valid_to IS NULL AS open FROM tier_versions WHERE symbol = 'AAPL-USD' AND leverage = '5' ORDER BY valid_from",
      )
      .all();
    assert.equal(versions.length, 2);
    assert.deepEqual(versions[1], { max_notional: 12_345, open: 1 });
    assert.deepEqual(current(h), expected(h.sim.tiers()));
    assert.equal(back.changes.filter((change) => change.symbol === 'NEW-USD' && change.change === 'added').length, 2);
  } finally {
    await h.close();
  }
});

test('a socket dropped mid-sweep leaves the history untouched, and a retry on a fresh connection succeeds', async () => {
  const h = await startHarness();
  try {
    const config = h.config({ TIERWATCH_PAGE_SIZE: '10', TIERWATCH_SWEEP_RETRIES: '0' });
    assertOk(await sweepAccount(config, 'primary', h));
    h.sim.editTier('primary', 'GOOG-USD', '2', { initial_margin: 0.55 });
    const before = historyDump(h);
    h.sim.inject({ kind: 'drop_at_page', page: 3 });
    const failed = await sweepAccount(config, 'primary', h);
    assertFailed(failed, 'QFEX_CLOSED');
    assert.deepEqual(historyDump(h), before, 'a failed sweep must not change the history');
    const ledger = run(h, failed.runId);
    assert.equal(ledger.status, 'failed');
    assert.equal(ledger.error_code, 'QFEX_CLOSED');
    assert.equal(ledger.pages, 2);

    h.sim.inject({ kind: 'drop_at_page', page: 2 });
    const retried = await sweepAccount(
      h.config({ TIERWATCH_PAGE_SIZE: '10', TIERWATCH_SWEEP_RETRIES: '1' }),
      'primary',
      h,
    );
    assertOk(retried);
    assert.deepEqual(
      retried.changes.map((change) => [change.symbol, change.leverage, change.change, change.changed_columns]),
      [['GOOG-USD', '2', 'changed', ['initial_margin']]],
    );
  } finally {
    await h.close();
  }
});

test('one malformed row fails the whole sweep, naming the row, and stores nothing', async () => {
  const h = await startHarness();
  try {
    const config = h.config({ TIERWATCH_PAGE_SIZE: '10' });
    h.sim.inject({
      kind: 'malformed_row',
      page: 2,
      index: 3,
      row: {
        id: 'x',
        symbol: 'PLTR-USD',
        leverage: '3',
        initial_margin: 0.2,
        maintenance_margin: 0.5,
        max_notional: 1000,
      },
    });
    const result = await sweepAccount(config, 'primary', h);
    assertFailed(result, 'ROW_INVALID');
    if (!result.ok) assert.match(result.error.message, /PLTR-USD/);
    assert.deepEqual(historyDump(h), { versions: [], changes: [] });
    assert.equal(run(h, result.runId).error_code, 'ROW_INVALID');
  } finally {
    await h.close();
  }
});

test('an auth rejection fails the run with QFEX_AUTH_REJECTED and never logs the secret', async () => {
  const secret = 'qfex_secret_WRONG_and_recognisable_123';
  const h = await startHarness({}, { QFEX_SECRET_KEY: secret });
  try {
    const result = await sweepAccount(h.config(), 'primary', h);
    assertFailed(result, 'QFEX_AUTH_REJECTED');
    assert.equal(run(h, result.runId).status, 'failed');
    assert.ok(!h.logs.text().includes(secret), 'the secret must not be logged');
    assert.ok(!JSON.stringify(run(h, result.runId)).includes(secret));
  } finally {
    await h.close();
  }
});

test('every legacy form the exchange may send is accepted and stored the same', async () => {
  const modern = await startHarness();
  const legacy = await startHarness({
    legacy: { authSuccess: true, flatErrors: true, maxPosition: true, numericLeverage: true },
  });
  try {
    assertOk(await sweepAccount(modern.config(), 'primary', modern));
    assertOk(await sweepAccount(legacy.config(), 'primary', legacy));
    assert.deepEqual(current(legacy), current(modern));
    legacy.sim.inject({ kind: 'error_reply', page: 1, code: 'InvalidParameter', message: 'limit out of range' });
    const failed = await sweepAccount(legacy.config(), 'primary', legacy);
    assertFailed(failed, 'QFEX_ERROR');
    if (!failed.ok) assert.match(failed.error.message, /InvalidParameter/);
  } finally {
    await modern.close();
    await legacy.close();
  }
});

test('a list that shifts during paging is swept again from the start and stored consistently', async () => {
  const h = await startHarness();
  try {
    const config = h.config({ TIERWATCH_PAGE_SIZE: '10' });
    h.sim.inject({ kind: 'shift_delete', afterPage: 2 });
    const result = await sweepAccount(config, 'primary', h);
    assertOk(result);
    assert.deepEqual(current(h), expected(h.sim.tiers()), 'the stored state is the state after the shift');
  } finally {
    await h.close();
  }
});

test('several accounts are swept on their own connections, as their own runs', async () => {
  const universe = (scale: number): SimTier[] =>
    ['AAPL-USD', 'META-USD'].flatMap((symbol) =>
      [1, 2, 5].map((leverage) => ({
        id: `${symbol}-${leverage}-${scale}`,
        symbol,
        leverage: String(leverage),
        initial_margin: 1 / leverage,
        maintenance_margin: (1 / leverage) * (2 / 3),
        max_notional: (100_000 * scale) / leverage,
      })),
    );
  const h = await startHarness(
    {
      keys: [
        {
          publicKey: 'qfex_pub_demo_tierwatch',
          secretKey: 'qfex_secret_demo_tierwatch_not_a_real_key',
          accounts: ['primary', SUBACCOUNT],
        },
      ],
      universe: { primary: universe(1), [SUBACCOUNT]: universe(3) },
    },
    { QFEX_ACCOUNT_IDS: `primary,${SUBACCOUNT}` },
  );
  try {
    const config = h.config();
    const results = await sweepAll(config, h);
    assert.equal(results.length, 2);
    results.forEach(assertOk);
    assert.notEqual(results[0]!.runId, results[1]!.runId);
    assert.deepEqual(current(h, 'primary'), expected(universe(1)));
    assert.deepEqual(current(h, SUBACCOUNT), expected(universe(3)));
    h.sim.editTier(SUBACCOUNT, 'META-USD', '5', { max_notional: 1 });
    const again = await sweepAll(config, h);
    const changesByAccount = again.map((result) => (result.ok ? result.changes.length : -1));
    assert.deepEqual(changesByAccount, [0, 1]);
  } finally {
    await h.close();
  }
});

test('a database bound to one endpoint refuses another', async () => {
  const h = await startHarness();
  try {
    assertOk(await sweepAccount(h.config(), 'primary', h));
    await assert.rejects(
      sweepAccount(h.config({ QFEX_WS_URL: 'ws://127.0.0.1:1' }), 'primary', h),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ENDPOINT_MISMATCH');
        return true;
      },
    );
  } finally {
    await h.close();
  }
});

test('the stored changes between sweeps are exactly the net changes the simulator made', async () => {
  const h = await startHarness();
  try {
    const config = h.config();
    assertOk(await sweepAccount(config, 'primary', h));
    for (let round = 0; round < 3; round += 1) {
      const before = h.sim.tiers();
      const mark = h.sim.mark();
      h.sim.editTier('primary', 'CL-USD', '2', { max_notional: 1000 + round });
      h.sim.removeTier('primary', 'SP500-USD', before.find((tier) => tier.symbol === 'SP500-USD')!.leverage);
      h.sim.listSymbol('primary', `X${round}-USD`, { levels: [1] });
      h.sim.editTier('primary', `X${round}-USD`, '1', { max_notional: 5 }); // net: an add with these values
      const result = await sweepAccount(config, 'primary', h);
      assertOk(result);
      const made = h.sim.changeLog.filter((change) => change.seq > mark);
      const netKeys = new Set(made.map((change) => `${change.symbol} ${normalizeLeverage(change.leverage)}`));
      const recordedKeys = new Set(result.changes.map((change) => `${change.symbol} ${change.leverage}`));
      assert.deepEqual(recordedKeys, netKeys);
      assert.deepEqual(current(h), expected(h.sim.tiers()));
    }
  } finally {
    await h.close();
  }
});
