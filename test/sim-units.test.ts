/** Pure parts of the simulator: signature vectors, authenticator rules, tier book, faults, universes, scenarios, script. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeSignature, verifySignature } from '../src/sim/signature.ts';
import { Authenticator } from '../src/sim/auth.ts';
import { TierBook, diffTiers } from '../src/sim/book.ts';
import { FaultQueue, validateFault, type Fault } from '../src/sim/faults.ts';
import { defaultUniverse, makeTier, syntheticUniverse, compareTiers } from '../src/sim/universe.ts';
import { loadScenario, parseScenario } from '../src/sim/scenario.ts';
import { startChangeScript, startSimulator } from '../src/sim/index.ts';
import { TierwatchError } from '../src/errors.ts';

test('signature: the two test vectors of the protocol notes', () => {
  assert.equal(
    computeSignature('qfex_secret_yyyyyy', 'c0ffee', 1760545414),
    '222adbb0993646affe345a15f3c5b45e7123d4ff2c38dc4245c81ffb24c66d64',
  );
  assert.equal(
    computeSignature('qfex_secret_yyyyyy', '00112233445566778899aabbccddeeff', 1760545414),
    '4b2447002bae930f69b2da9bde697d9baa0bc6bdefc63820ec3a393ce646b66d',
  );
});

test('signature: verification is case-insensitive unless lowercase-only, and rejects anything else', () => {
  const sig = '222adbb0993646affe345a15f3c5b45e7123d4ff2c38dc4245c81ffb24c66d64';
  assert.equal(verifySignature('qfex_secret_yyyyyy', 'c0ffee', 1760545414, sig), true);
  assert.equal(verifySignature('qfex_secret_yyyyyy', 'c0ffee', 1760545414, sig.toUpperCase()), true);
  assert.equal(
    verifySignature('qfex_secret_yyyyyy', 'c0ffee', 1760545414, sig.toUpperCase(), { lowercaseOnly: true }),
    false,
  );
  assert.equal(verifySignature('qfex_secret_yyyyyy', 'c0ffee', 1760545415, sig), false);
  assert.equal(verifySignature('qfex_secret_other', 'c0ffee', 1760545414, sig), false);
  assert.equal(verifySignature('qfex_secret_yyyyyy', 'c0ffee', 1760545414, sig.slice(0, 63)), false);
  assert.equal(verifySignature('qfex_secret_yyyyyy', 'c0ffee', 1760545414, 42), false);
});

test('authenticator: nonce reuse is refused within the window and allowed after it (fake clock)', () => {
  let nowMs = 1760545414_000;
  const auth = new Authenticator({
    keys: [{ publicKey: 'qfex_pub_x', secretKey: 'qfex_secret_yyyyyy', accounts: ['primary', 'sub-1'] }],
    jwts: [],
    clockSkewSec: 30,
    nonceWindowMs: 15 * 60_000,
    strict: false,
    now: () => nowMs,
  });
  const params = (ts: number, extra: Record<string, unknown> = {}) => ({
    hmac: {
      public_key: 'qfex_pub_x',
      nonce: 'c0ffee',
      unix_ts: ts,
      signature: computeSignature('qfex_secret_yyyyyy', 'c0ffee', ts),
    },
    ...extra,
  });
  assert.deepEqual(auth.verify(params(1760545414), null), { ok: true, account: 'primary', principal: 'qfex_pub_x' });
  nowMs += 60_000;
  const ts2 = nowMs / 1000;
  assert.equal((auth.verify(params(ts2), null) as { reason: string }).reason, 'replayed_nonce');
  nowMs += 15 * 60_000;
  const ts3 = nowMs / 1000;
  assert.deepEqual(auth.verify(params(ts3, { account_id: 'sub-1' }), null), {
    ok: true,
    account: 'sub-1',
    principal: 'qfex_pub_x',
  });
  assert.equal((auth.verify(params(ts3 - 31), null) as { reason: string }).reason, 'stale_timestamp');
});

test('default universe: documented symbols, sorted, margins and notionals shaped like the docs', () => {
  const tiers = defaultUniverse();
  const symbols = new Set(tiers.map((t) => t.symbol));
  for (const s of [
    'AAPL-USD',
    'META-USD',
    'PLTR-USD',
    'GOOG-USD',
    'SP500-USD',
    'CL-USD',
    'US100-USD',
    'COPPER-USD',
    'NATGAS-USD',
    'EUR-USD',
    'TSLA-USD',
  ]) {
    assert.ok(symbols.has(s), s);
  }
  assert.deepEqual([...tiers].sort(compareTiers), tiers);
  const meta = tiers.filter((t) => t.symbol === 'META-USD');
  assert.deepEqual(
    meta
      .map((t) => [t.leverage, t.initial_margin, t.maintenance_margin, t.max_notional])
      .filter(([l]) => ['1', '2', '20'].includes(String(l))),
    [
      ['1', 1, 0.6666666666666666, 195000],
      ['2', 0.5, 0.3333333333333333, 190000],
      ['20', 0.05, 0.03333333333333333, 100000],
    ],
  );
  assert.equal(new Set(tiers.map((t) => t.id)).size, tiers.length);
  assert.deepEqual(defaultUniverse(), tiers, 'ids and values are stable');
});

test('synthetic universe: exact count, distinct keys, exchange order, reproducible by seed', () => {
  const big = syntheticUniverse(20_000, 7);
  assert.equal(big.length, 20_000);
  assert.equal(new Set(big.map((t) => `${t.symbol}|${t.leverage}`)).size, 20_000);
  for (let i = 1; i < big.length; i++) assert.ok(compareTiers(big[i - 1]!, big[i]!) < 0, `order at ${i}`);
  assert.deepEqual(syntheticUniverse(25, 7), big.slice(0, 25));
  assert.notDeepEqual(syntheticUniverse(25, 8), big.slice(0, 25));
  assert.equal(syntheticUniverse(0).length, 0);
});

test('tier book: every mutation is logged with before/after, snapshots are deep copies, revert restores', () => {
  let nowMs = 1000;
  const book = new TierBook({ primary: defaultUniverse() }, () => nowMs);
  const start = book.tiers('primary');
  const mark = book.mark();
  nowMs = 2000;
  const edit = book.editTier('primary', 'META-USD', '20', { max_notional: 90000 });
  assert.deepEqual(
    [edit.kind, edit.at, edit.before?.max_notional, edit.after?.max_notional],
    ['changed', 2000, 100000, 90000],
  );
  book.removeTier('primary', 'AAPL-USD', 1);
  book.listSymbol('primary', 'NVDA-USD', { levels: [1, 2] });
  assert.deepEqual(
    book.changeLog.map((c) => [c.seq, c.kind, c.symbol, c.leverage]),
    [
      [1, 'changed', 'META-USD', '20'],
      [2, 'removed', 'AAPL-USD', '1'],
      [3, 'added', 'NVDA-USD', '1'],
      [4, 'added', 'NVDA-USD', '2'],
    ],
  );
  const snapshot = book.tiers('primary');
  snapshot[0]!.max_notional = -1;
  assert.notEqual(book.tiers('primary')[0]!.max_notional, -1);
  assert.throws(() => book.editTier('primary', 'NOPE-USD', 1, {}), /No tier NOPE-USD/);
  assert.throws(() => book.addTier('primary', makeTier('META-USD', 20, 1)), /already exists/);

  const reverted = book.revertTo(mark);
  assert.deepEqual(book.tiers('primary'), start);
  assert.deepEqual(reverted.map((c) => [c.kind, c.symbol, c.leverage]).sort(), [
    ['added', 'AAPL-USD', '1'],
    ['changed', 'META-USD', '20'],
    ['removed', 'NVDA-USD', '1'],
    ['removed', 'NVDA-USD', '2'],
  ]);
  assert.equal(book.changeLog.length, 8, 'the log is appended to, never rewritten');
  assert.deepEqual(diffTiers(start, book.tiers('primary')), []);
});

test('fault queue: consumed in order, one per kind per event, times and persistent honoured', () => {
  const queue = new FaultQueue();
  queue.inject({ kind: 'error_reply', code: 'RateLimited', retryAfterMs: 10 });
  queue.inject({ kind: 'error_reply', code: 'ServerError', times: 2 });
  queue.inject({ kind: 'delay_page', ms: 5, page: 3, persistent: true });
  const codes = () => queue.take(['error_reply']).map((f) => (f.kind === 'error_reply' ? f.code : ''));
  assert.deepEqual(codes(), ['RateLimited']);
  assert.deepEqual(codes(), ['ServerError']);
  assert.deepEqual(codes(), ['ServerError']);
  assert.deepEqual(codes(), []);
  for (let i = 0; i < 3; i++) assert.equal(queue.take(['delay_page'], (f) => f.page === 3).length, 1);
  assert.equal(queue.take(['delay_page'], (f) => f.page === 2).length, 0);
  assert.equal(queue.list().length, 1);
  queue.clear();
  assert.equal(queue.list().length, 0);
  assert.throws(() => validateFault({ kind: 'drop_before_page' } as unknown as Fault), /page/);
  assert.throws(() => validateFault({ kind: 'explode' } as unknown as Fault), /Unknown fault kind/);
  assert.throws(() => validateFault({ kind: 'bad_frame', frame: 'weird' } as unknown as Fault), /frame/);
});

test('scenario files: a valid file is expanded; errors name the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sim-scenario-'));
  try {
    const path = join(dir, 'scenario.json');
    writeFileSync(
      path,
      JSON.stringify({
        maxPageSize: 100,
        universe: { primary: 'default', 'sub-1': { synthetic: 30, seed: 3 } },
        legacy: { maxPosition: true },
        faults: [{ kind: 'drop_at_page', page: 3, times: 2 }],
        script: { everyMs: 5000, seed: 42 },
      }),
    );
    const scenario = loadScenario(path);
    assert.equal(scenario.maxPageSize, 100);
    assert.deepEqual(scenario.universe?.['primary'], defaultUniverse());
    assert.equal(scenario.universe?.['sub-1']?.length, 30);
    assert.deepEqual(scenario.faults, [{ kind: 'drop_at_page', page: 3, times: 2 }]);
    assert.deepEqual(scenario.script, { everyMs: 5000, seed: 42 });

    const bad = (value: unknown, pattern: RegExp) =>
      assert.throws(
        () => parseScenario(value, 'x.json'),
        (e: unknown) => e instanceof TierwatchError && e.code === 'CONFIG_INVALID' && pattern.test(e.message),
      );
    bad({ maxPageSize: 0 }, /maxPageSize/);
    bad({ maxPagesize: 10 }, /maxPagesize/);
    bad({ faults: [{ kind: 'delay_page' }] }, /faults\.0: .*ms/);
    bad({ authFailureMode: 'shout' }, /authFailureMode/);
    writeFileSync(path, '{ nope');
    assert.throws(() => loadScenario(path), /not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('change script: seeded steps are reproducible and every change lands in the change log', async () => {
  const runSteps = async (seed: number) => {
    const sim = await startSimulator();
    try {
      const script = startChangeScript(sim, { everyMs: 60_000, seed });
      const made = Array.from({ length: 30 }, () => script.step()).flat();
      script.stop();
      assert.ok(made.length >= 30);
      assert.deepEqual(sim.changeLog, made);
      return {
        log: made.map((c) => [c.kind, c.symbol, c.leverage, c.after?.max_notional ?? null]),
        kinds: new Set(made.map((c) => c.kind)),
      };
    } finally {
      await sim.close();
    }
  };
  const a = await runSteps(42);
  const b = await runSteps(42);
  assert.deepEqual(a.log, b.log);
  assert.deepEqual([...a.kinds].sort(), ['added', 'changed', 'removed']);
});

test('change script: listed steps, including a revert that restores the earlier values (A → B → A)', async () => {
  const sim = await startSimulator();
  try {
    const before = sim.tiers().find((t) => t.symbol === 'META-USD' && t.leverage === '10')!;
    const script = startChangeScript(sim, {
      everyMs: 60_000,
      steps: [{ op: 'edit', symbol: 'META-USD', leverage: '10', patch: { max_notional: 1234 } }, { op: 'revert' }],
    });
    script.step();
    assert.equal(sim.tiers().find((t) => t.symbol === 'META-USD' && t.leverage === '10')!.max_notional, 1234);
    script.step();
    assert.deepEqual(
      sim.tiers().find((t) => t.symbol === 'META-USD' && t.leverage === '10'),
      before,
    );
    assert.deepEqual(
      sim.changeLog.map((c) => [c.kind, c.before?.max_notional, c.after?.max_notional]),
      [
        ['changed', before.max_notional, 1234],
        ['changed', 1234, before.max_notional],
      ],
    );
    assert.deepEqual(script.step(), [], 'a finished listed script does nothing');
    script.stop();
  } finally {
    await sim.close();
  }
});
