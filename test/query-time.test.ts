import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseTimeArgument, resolveTime } from '../src/query/time.ts';
import { matchesPattern, patternCondition, toGlob } from '../src/query/filters.ts';
import { resolveFormat } from '../src/output/format.ts';
import { lastSweepLine } from '../src/output/table.ts';
import { isTierwatchError } from '../src/errors.ts';

const NOW = new Date('2026-10-08T12:00:00.000Z');
const instant = (text: string) => {
  const spec = parseTimeArgument(text, NOW, '--at');
  assert.equal(spec.kind, 'instant');
  return spec.kind === 'instant' ? spec.iso : '';
};

describe('time arguments', () => {
  it('reads ISO dates and instants, with no offset meaning UTC', () => {
    assert.equal(instant('2026-10-01'), '2026-10-01T00:00:00.000Z');
    assert.equal(instant('2026-10-01T12:00'), '2026-10-01T12:00:00.000Z');
    assert.equal(instant('2026-10-01T12:00:00Z'), '2026-10-01T12:00:00.000Z');
    assert.equal(instant('2026-10-01 12:00:00.25'), '2026-10-01T12:00:00.250Z');
    assert.equal(instant('2026-10-01T12:00:00.123456789'), '2026-10-01T12:00:00.123Z');
    assert.equal(instant('2026-10-01T12:00:00+02:00'), '2026-10-01T10:00:00.000Z');
    assert.equal(instant('2026-10-01T00:30:00-0130'), '2026-10-01T02:00:00.000Z');
    assert.equal(instant('2024-02-29'), '2024-02-29T00:00:00.000Z');
  });

  it('reads relative ages back from now, and now itself', () => {
    assert.equal(instant('90m'), '2026-10-08T10:30:00.000Z');
    assert.equal(instant('36h'), '2026-10-07T00:00:00.000Z');
    assert.equal(instant('7d'), '2026-10-01T12:00:00.000Z');
    assert.equal(instant('1w'), '2026-10-01T12:00:00.000Z');
    assert.equal(instant('30s'), '2026-10-08T11:59:30.000Z');
    assert.equal(instant('now'), NOW.toISOString());
  });

  it('reads run ids and resolves them to the run’s observed_at', () => {
    const spec = parseTimeArgument('run:42', NOW, '--at');
    assert.deepEqual(spec, { kind: 'run', runId: 42 });
    const lookup = (id: number) =>
      id === 42
        ? { observed_at: '2026-10-01T00:00:00.000Z', status: 'ok' }
        : id === 43
          ? { observed_at: null, status: 'failed' }
          : undefined;
    assert.equal(resolveTime(spec, lookup, '--at'), '2026-10-01T00:00:00.000Z');
    assert.throws(
      () => resolveTime({ kind: 'run', runId: 43 }, lookup, '--at'),
      /run 43 has no observed_at \(its status is failed\)/,
    );
    assert.throws(() => resolveTime({ kind: 'run', runId: 7 }, lookup, '--at'), /no run 7/);
  });

  for (const bad of [
    'yesterday',
    '',
    '2026-13-01',
    '2026-02-30',
    '2026-10-01T24:00',
    '2026-10-01T12:60',
    '7 d',
    '-7d',
    '7y',
    'run:',
    'run:x',
    '1696118400',
    '2026/10/01',
    '2026-10-01T12:00:00+25:00',
  ]) {
    it(`rejects ${JSON.stringify(bad)} with USAGE naming the flag and the accepted forms`, () => {
      assert.throws(
        () => parseTimeArgument(bad, NOW, '--since'),
        (error: unknown) =>
          isTierwatchError(error, 'USAGE') &&
          error.message.includes('`--since`') &&
          error.message.includes('2026-10-01T12:00:00Z') &&
          error.message.includes('90m, 36h, 7d') &&
          error.message.includes('run:42') &&
          error.message.includes(JSON.stringify(bad)),
      );
    });
  }
});

describe('filter patterns', () => {
  it('escapes every GLOB metacharacter but *', () => {
    assert.equal(toGlob('US_100'), 'US_100');
    assert.equal(toGlob('A?B*'), 'A[?]B*');
    assert.equal(toGlob('[X]*'), '[[]X[]]*');
  });

  it('uses equality for exact names and GLOB for patterns', () => {
    assert.deepEqual(patternCondition('symbol', []), { sql: '1', params: [] });
    assert.deepEqual(patternCondition('symbol', ['A', 'A']), { sql: 'symbol = ?', params: ['A'] });
    assert.deepEqual(patternCondition('symbol', ['A', 'B', '*-USD']), {
      sql: '(symbol IN (?, ?) OR symbol GLOB ?)',
      params: ['A', 'B', '*-USD'],
    });
  });

  it('matchesPattern agrees with the SQL meaning', () => {
    assert.equal(matchesPattern('*-USD', 'META-USD'), true);
    assert.equal(matchesPattern('*-USD', 'META-USDT'), false);
    assert.equal(matchesPattern('US_100', 'US1100'), false);
    assert.equal(matchesPattern('A.B', 'AxB'), false);
  });
});

describe('output format choice', () => {
  it('is a table on a terminal and JSON otherwise, unless asked', () => {
    assert.equal(resolveFormat(undefined, true), 'table');
    assert.equal(resolveFormat(undefined, false), 'json');
    assert.equal(resolveFormat('CSV', true), 'csv');
    assert.throws(() => resolveFormat('xml', false), /`--format` to be one of table, json, ndjson, csv; got "xml"/);
  });

  it('ends tables with the age of the last successful sweep', () => {
    assert.equal(
      lastSweepLine('2026-10-08T11:55:00.000Z', NOW),
      'Last successful sweep: 2026-10-08T11:55:00.000Z (5m ago).',
    );
    assert.equal(lastSweepLine(null, NOW), 'No sweep has succeeded yet.');
  });
});
