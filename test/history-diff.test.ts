import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { diffTiers } from '../src/history/diff.ts';
import { CurrentTiers } from '../src/history/current-tiers.ts';
import type { Tier } from '../src/history/tier.ts';
import { isTierwatchError } from '../src/errors.ts';

function tier(
  symbol: string,
  leverage: string,
  im = 0.05,
  mm = 0.025,
  notional = 100_000,
  id: string | null = null,
): Tier {
  return { symbol, leverage, initial_margin: im, maintenance_margin: mm, max_notional: notional, exchange_id: id };
}

function currentOf(tiers: Tier[]): CurrentTiers {
  return CurrentTiers.from(tiers.map((t, index) => ({ ...t, version_id: index + 1 })));
}

describe('diffTiers', () => {
  it('reports every tier as added against an empty state', () => {
    const incoming = [tier('AAPL-USD', '10'), tier('AAPL-USD', '20')];
    const diff = diffTiers(new CurrentTiers(), incoming);
    assert.deepEqual(diff.added, incoming);
    assert.deepEqual([diff.removed.length, diff.changed.length, diff.unchanged], [0, 0, 0]);
  });

  it('reports nothing for an identical sweep, floats included', () => {
    const tiers = [tier('META-USD', '3', 0.6666666666666666, 0.3333333333333333, 1e6), tier('META-USD', '5')];
    // As a second sweep would read them: parsed afresh from the wire's JSON text.
    const again = JSON.parse(JSON.stringify(tiers).replace('0.6666666666666666', '0.66666666666666663')) as Tier[];
    const diff = diffTiers(currentOf(tiers), again);
    assert.deepEqual([diff.added.length, diff.removed.length, diff.changed.length, diff.unchanged], [0, 0, 0, 2]);
  });

  it('ignores a change of exchange_id alone', () => {
    const diff = diffTiers(currentOf([tier('CL-USD', '5', 0.2, 0.1, 5e5, 'a')]), [
      tier('CL-USD', '5', 0.2, 0.1, 5e5, 'b'),
    ]);
    assert.equal(diff.unchanged, 1);
    assert.equal(diff.changed.length, 0);
  });

  it('names exactly the tracked columns that changed, with before and after', () => {
    const before = tier('GOOG-USD', '10', 0.1, 0.05, 190_000);
    const after = tier('GOOG-USD', '10', 0.1, 0.06, 150_000);
    const diff = diffTiers(currentOf([before]), [after]);
    assert.equal(diff.changed.length, 1);
    assert.deepEqual(diff.changed[0]!.columns, ['maintenance_margin', 'max_notional']);
    assert.equal(diff.changed[0]!.before.version_id, 1);
    assert.deepEqual(diff.changed[0]!.after, after);
  });

  it('finds removals, keeping the stored version to close', () => {
    const diff = diffTiers(currentOf([tier('A', '1'), tier('B', '1'), tier('C', '1')]), [
      tier('B', '1'),
      tier('D', '1'),
    ]);
    assert.deepEqual(
      diff.removed.map((r) => [r.symbol, r.version_id]),
      [
        ['A', 1],
        ['C', 3],
      ],
    );
    assert.deepEqual(
      diff.added.map((a) => a.symbol),
      ['D'],
    );
    assert.equal(diff.unchanged, 1);
  });

  it('keeps the leverage part of the identity: same symbol, other leverage is another tier', () => {
    const diff = diffTiers(currentOf([tier('SP500-USD', '10')]), [tier('SP500-USD', '10.5')]);
    assert.equal(diff.added.length, 1);
    assert.equal(diff.removed.length, 1);
  });

  it('refuses a sweep that lists the same tier twice', () => {
    assert.throws(
      () => diffTiers(new CurrentTiers(), [tier('A', '1'), tier('A', '1', 0.2)]),
      (error: unknown) => isTierwatchError(error, 'INTERNAL') && /twice/.test(error.message),
    );
    // A duplicate of a current tier could hide a removal (B missing, A twice): refused too.
    assert.throws(
      () => diffTiers(currentOf([tier('A', '1'), tier('B', '1')]), [tier('A', '1'), tier('A', '1')]),
      (error: unknown) => isTierwatchError(error, 'INTERNAL') && /A at leverage 1 twice/.test(error.message),
    );
  });

  it('treats NaN read twice as the same value (exact comparison, not ===)', () => {
    const diff = diffTiers(currentOf([tier('A', '1', Number.NaN)]), [tier('A', '1', Number.NaN)]);
    assert.equal(diff.unchanged, 1);
  });
});

describe('CurrentTiers', () => {
  it('keeps one version per (symbol, leverage) and counts them', () => {
    const tiers = new CurrentTiers();
    tiers.set({ ...tier('A', '1'), version_id: 1 });
    tiers.set({ ...tier('A', '2'), version_id: 2 });
    tiers.set({ ...tier('A', '1', 0.3), version_id: 3 });
    assert.equal(tiers.size, 2);
    assert.equal(tiers.get('A', '1')?.version_id, 3);
    assert.equal(tiers.delete('A', '1'), true);
    assert.equal(tiers.delete('A', '1'), false);
    assert.equal(tiers.get('A', '1'), undefined);
    assert.deepEqual(
      [...tiers.values()].map((v) => v.version_id),
      [2],
    );
    assert.equal(tiers.size, 1);
  });
});
