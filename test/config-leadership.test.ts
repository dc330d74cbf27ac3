/**
 * The leadership settings (Postgres only): defaults that give the documented 20 s takeover bound,
 * derived limits that keep a frozen leader's transaction inside its lease, and refusals that name
 * the variable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isTierwatchError } from '../src/errors.ts';
import { loadConfig } from '../src/config.ts';

test('defaults: 15 s lease renewed every 5 s, polled every 5 s (takeover within 20 s); step down after 3', () => {
  const { leadership } = loadConfig({});
  assert.deepEqual(leadership, {
    lease: { ttlMs: 15_000, renewEveryMs: 5_000, pollEveryMs: 5_000, writeTimeoutMs: 5_000, acquireLockWaitMs: 2_000 },
    stepDownAfter: 3,
  });
});

test('a short lease derives its renewal, poll and transaction limits from the TTL', () => {
  const { lease } = loadConfig({ TIERWATCH_LEASE_TTL: '3s' }).leadership;
  assert.deepEqual(lease, {
    ttlMs: 3000,
    renewEveryMs: 1000,
    pollEveryMs: 3000,
    writeTimeoutMs: 1000,
    acquireLockWaitMs: 1500,
  });
  // A frozen leader's open transaction ends (2 × writeTimeoutMs) before its lease does.
  assert.ok(2 * lease.writeTimeoutMs < lease.ttlMs);
});

test('bad values are refused with CONFIG_INVALID, naming the variable', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ TIERWATCH_LEASE_TTL: '500ms' }, /`TIERWATCH_LEASE_TTL` to be at least 1s/],
    [
      { TIERWATCH_LEASE_TTL: '10s', TIERWATCH_LEASE_RENEW: '6s' },
      /`TIERWATCH_LEASE_RENEW` \(6000 ms\) to be at most half/,
    ],
    [{ TIERWATCH_LEASE_POLL: '5' }, /`TIERWATCH_LEASE_POLL`/],
    [
      { TIERWATCH_STEP_DOWN_AFTER: 'three' },
      /`TIERWATCH_STEP_DOWN_AFTER` to be an integer from 0 to 1000, got "three"/,
    ],
  ];
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => isTierwatchError(error, 'CONFIG_INVALID') && message.test(error.message),
      JSON.stringify(env),
    );
  }
});
