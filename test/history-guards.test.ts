/** The pure parts of the clock and erosion guards and of the unknown-variable warning. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkClock, erosionBaseline, formatGap } from '../src/history/guards.ts';
import { editDistance, unknownVariables } from '../src/config-names.ts';
import { TierwatchError } from '../src/errors.ts';

test('erosionBaseline: the largest recent count, reset by a drop that was accepted with a raised ratio', () => {
  assert.equal(erosionBaseline([], 0.5), 0);
  assert.equal(erosionBaseline([20, 11], 0.5), 20);
  assert.equal(erosionBaseline([20, 11, 25, 14], 0.5), 25);
  assert.equal(erosionBaseline([20, 11, 1], 0.5), 1, '1 of 20 was stored: an operator accepted it');
  assert.equal(erosionBaseline([20, 1, 3], 0.5), 3);
});

test('checkClock: CLOCK_BEHIND with the gap in words; later observations pass', () => {
  assert.doesNotThrow(() =>
    checkClock({
      runId: 1,
      accountId: 'primary',
      observedAt: '2026-01-01T00:00:00.001Z',
      lastObservedAt: '2026-01-01T00:00:00.000Z',
    }),
  );
  assert.doesNotThrow(() =>
    checkClock({ runId: 1, accountId: 'primary', observedAt: '2026-01-01T00:00:00.000Z', lastObservedAt: null }),
  );
  assert.throws(
    () =>
      checkClock({
        runId: 7,
        accountId: 'sub-1',
        observedAt: '2026-01-01T00:00:00.000Z',
        lastObservedAt: '2026-01-01T01:02:03.500Z',
      }),
    (error: unknown) =>
      error instanceof TierwatchError &&
      error.code === 'CLOCK_BEHIND' &&
      /Run 7 of account sub-1 .* 1 h 2 min 3\.5 s before/.test(error.message),
  );
  assert.equal(formatGap(250), '250 ms');
  assert.equal(formatGap(25 * 365 * 86_400_000), '9125 d');
});

test('unknownVariables: ours only, with a suggestion when a name is a slip away', () => {
  assert.equal(editDistance('TIERWATCH_SCHEDUEL', 'TIERWATCH_SCHEDULE'), 1);
  const known = new Set(['TIERWATCH_SCHEDULE', 'TIERWATCH_DB', 'QFEX_WS_URL', 'LOG_LEVEL']);
  assert.deepEqual(
    unknownVariables(
      ['TIERWATCH_SCHEDUEL', 'QFEX_WS_ULR', 'TIERWATCH_DB', 'PATH', 'TIERWATCH_TEST_CRASH_AT', 'TIERWATCH_XYZZY_PLUGH'],
      known,
    ),
    [
      { variable: 'QFEX_WS_ULR', suggestion: 'QFEX_WS_URL' },
      { variable: 'TIERWATCH_SCHEDUEL', suggestion: 'TIERWATCH_SCHEDULE' },
      { variable: 'TIERWATCH_XYZZY_PLUGH', suggestion: null },
    ],
  );
});
