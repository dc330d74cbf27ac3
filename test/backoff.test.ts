/**
 * The one backoff computation (src/backoff.ts) shared by the pager, the collector and the alerts:
 * exponential, jitter on the upper half, capped — before the jitter for the collector and the
 * alerts, after it (with the retry-after hint) for the pager.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../src/backoff.ts';

test('exponential from baseMs with jitter on the upper half', () => {
  assert.deepEqual(
    [0, 1, 2, 3].map((attempt) => backoffDelay(attempt, { baseMs: 100, maxMs: 10_000, random: () => 0 })),
    [50, 100, 200, 400],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((attempt) => backoffDelay(attempt, { baseMs: 100, maxMs: 10_000, random: () => 0.5 })),
    [75, 150, 300, 600],
  );
});

test('capped before the jitter by default: waits at the cap stay spread over [max/2, max]', () => {
  assert.equal(backoffDelay(10, { baseMs: 100, maxMs: 1000, random: () => 0 }), 500);
  assert.equal(backoffDelay(10, { baseMs: 100, maxMs: 1000, random: () => 0.999_999 }), 1000);
});

test("capped after the jitter for the pager: the exchange's retry-after hint is honoured up to the cap", () => {
  assert.equal(backoffDelay(10, { baseMs: 100, maxMs: 1000, random: () => 0, cap: 'after-jitter' }), 1000);
  assert.equal(backoffDelay(0, { baseMs: 10, maxMs: 1000, random: () => 0.5, hintMs: 300, cap: 'after-jitter' }), 300);
  assert.equal(
    backoffDelay(0, { baseMs: 10, maxMs: 1000, random: () => 0.5, hintMs: 5000, cap: 'after-jitter' }),
    1000,
  );
});
