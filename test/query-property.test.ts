/**
 * Property: for random sequences of sweeps (several accounts, A → B → A, removals, re-listings,
 * failed runs, floats such as 0.6666666666666666), snapshotAt equals the test's own model of the
 * state at any point, diffBetween equals the model's difference between any two points, and
 * symbolHistory equals the model's versions. Expected values come from the model only.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { snapshotAt, diffBetween, symbolHistory } from '../src/query/index.ts';
import { isTierwatchError } from '../src/errors.ts';
import { tempHistory, tier } from './query-fixture.ts';

const ACCOUNTS = ['primary', 'sub1'];
const SYMBOLS = ['META-USD', 'AAPL-USD', 'US_100'];
const LEVERAGES = ['5', '20', '2.5'];
const COLUMNS = ['initial_margin', 'maintenance_margin', 'max_notional'] as const;
type Values = { initial_margin: number; maintenance_margin: number; max_notional: number };
const BASE = Date.parse('2026-10-01T00:00:00.000Z');

/** A few values per column, so that A → B → A happens often. */
const valuesArb: fc.Arbitrary<Values> = fc.record({
  initial_margin: fc.constantFrom(0.05, 0.1, 0.6666666666666666),
  maintenance_margin: fc.constantFrom(0.025, 1 / 3),
  max_notional: fc.constantFrom(150_000, 190_000),
});

const identityKeys = SYMBOLS.flatMap((symbol) => LEVERAGES.map((leverage) => ({ symbol, leverage })));

type Step =
  | { kind: 'sweep'; account: string; gapMs: number; tiers: Array<Values | null> }
  | { kind: 'fail'; account: string; gapMs: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('sweep' as const),
      account: fc.constantFrom(...ACCOUNTS),
      gapMs: fc.integer({ min: 1, max: 600_000 }),
      tiers: fc.array(fc.option(valuesArb, { freq: 3 }), {
        minLength: identityKeys.length,
        maxLength: identityKeys.length,
      }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('fail' as const),
      account: fc.constantFrom(...ACCOUNTS),
      gapMs: fc.integer({ min: 1, max: 600_000 }),
    }),
  },
);

interface ModelVersion extends Values {
  account_id: string;
  symbol: string;
  leverage: string;
  valid_from: string;
  valid_to: string | null;
}

const sameValues = (a: Values, b: Values) => COLUMNS.every((column) => Object.is(a[column], b[column]));
const pick = (v: Values): Values => ({
  initial_margin: v.initial_margin,
  maintenance_margin: v.maintenance_margin,
  max_notional: v.max_notional,
});
const byTier = (
  a: { account_id: string; symbol: string; leverage: string },
  b: { account_id: string; symbol: string; leverage: string },
) =>
  (a.account_id < b.account_id ? -1 : a.account_id > b.account_id ? 1 : 0) ||
  (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0) ||
  Number(a.leverage) - Number(b.leverage);

/** The model: every version each successful sweep implies, computed from the sweeps alone. */
function modelVersions(sweeps: Array<{ account: string; at: string; tiers: Array<Values | null> }>): ModelVersion[] {
  const versions: ModelVersion[] = [];
  const open = new Map<string, ModelVersion>();
  for (const sweep of sweeps) {
    identityKeys.forEach(({ symbol, leverage }, index) => {
      const key = `${sweep.account}|${symbol}|${leverage}`;
      const now = sweep.tiers[index] ?? null;
      const current = open.get(key);
      if (current !== undefined && (now === null || !sameValues(current, now))) {
        current.valid_to = sweep.at;
        open.delete(key);
      }
      if (now !== null && !open.has(key)) {
        const version: ModelVersion = {
          account_id: sweep.account,
          symbol,
          leverage,
          ...pick(now),
          valid_from: sweep.at,
          valid_to: null,
        };
        versions.push(version);
        open.set(key, version);
      }
    });
  }
  return versions;
}

const validAt = (version: ModelVersion, at: string) =>
  version.valid_from <= at && (version.valid_to === null || at < version.valid_to);

function modelDiff(versions: ModelVersion[], from: string, to: string) {
  const keys = new Map<string, { account_id: string; symbol: string; leverage: string }>();
  for (const version of versions) keys.set(`${version.account_id}|${version.symbol}|${version.leverage}`, version);
  const rows = [];
  for (const [key, id] of keys) {
    const at = (t: string) =>
      versions.find((v) => `${v.account_id}|${v.symbol}|${v.leverage}` === key && validAt(v, t));
    const before = at(from);
    const after = at(to);
    const base = { account_id: id.account_id, symbol: id.symbol, leverage: id.leverage };
    if (before === undefined && after === undefined) continue;
    if (before === undefined) {
      rows.push({ ...base, change: 'added', changed_columns: [], before: null, after: pick(after!) });
    } else if (after === undefined) {
      rows.push({ ...base, change: 'removed', changed_columns: [], before: pick(before), after: null });
    } else {
      const changed = COLUMNS.filter((column) => !Object.is(before[column], after[column]));
      if (changed.length > 0) {
        rows.push({ ...base, change: 'changed', changed_columns: changed, before: pick(before), after: pick(after) });
      }
    }
  }
  return rows.sort(byTier);
}

describe('query property: snapshot, diff and history agree with a model of the sweeps', () => {
  it('for random sweeps and random pairs of points', () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 14 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.constantFrom(-1, 0, 1)), { minLength: 1, maxLength: 6 }),
        (steps, pointPicks) => {
          const h = tempHistory();
          try {
            let clock = BASE;
            const sweeps: Array<{ account: string; at: string; tiers: Array<Values | null> }> = [];
            for (const step of steps) {
              clock += step.gapMs;
              const at = new Date(clock).toISOString();
              if (step.kind === 'fail') {
                h.fail(step.account, at);
                continue;
              }
              const tiers = identityKeys.flatMap(({ symbol, leverage }, index) => {
                const values = step.tiers[index];
                return values
                  ? [tier(symbol, leverage, values.initial_margin, values.maintenance_margin, values.max_notional)]
                  : [];
              });
              h.sweep(step.account, at, tiers);
              sweeps.push({ account: step.account, at, tiers: step.tiers });
            }
            const versions = modelVersions(sweeps);
            const strip = (rows: Array<Record<string, unknown>>) =>
              rows.map(({ exchange_id: _e, run_id: _r, leverage_value: _l, ...rest }) => rest);

            if (sweeps.length === 0) {
              assert.throws(
                () => snapshotAt(h.db, new Date(clock)),
                (e: unknown) => isTierwatchError(e, 'DB_EMPTY') && /empty/.test(e.message),
              );
              return;
            }
            // Points: on a sweep's observed_at, a millisecond either side, and once past the end.
            const instants = sweeps.map((sweep) => Date.parse(sweep.at));
            const point = ([n, , shift]: [number, number, number]) =>
              new Date(
                n % (instants.length + 1) === instants.length ? clock + 1 : instants[n % instants.length]! + shift,
              ).toISOString();
            const first = sweeps[0]!.at;

            for (const pickPair of pointPicks) {
              const a = point(pickPair);
              const b = point([pickPair[1], 0, pickPair[2]]);
              for (const at of [a, b]) {
                if (at < first) {
                  assert.throws(
                    () => snapshotAt(h.db, at),
                    (e: unknown) => isTierwatchError(e, 'DB_EMPTY') && e.message.includes(first),
                  );
                  continue;
                }
                const expected = versions.filter((v) => validAt(v, at)).sort(byTier);
                assert.deepEqual(strip(snapshotAt(h.db, at) as never), expected, `snapshot at ${at}`);
              }
              const [from, to] = a <= b ? [a, b] : [b, a];
              if (from < first) {
                assert.throws(
                  () => diffBetween(h.db, from, to),
                  (e: unknown) => isTierwatchError(e, 'DB_EMPTY'),
                );
              } else {
                assert.deepEqual(diffBetween(h.db, from, to), modelDiff(versions, from, to), `diff ${from} → ${to}`);
              }
            }
            for (const symbol of SYMBOLS) {
              const expected = versions
                .filter((v) => v.symbol === symbol)
                .sort((x, y) => (x.valid_from < y.valid_from ? -1 : x.valid_from > y.valid_from ? 1 : byTier(x, y)));
              assert.deepEqual(strip(symbolHistory(h.db, symbol) as never), expected, `history of ${symbol}`);
            }
          } finally {
            h.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
