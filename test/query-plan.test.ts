import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { snapshotSql, type SnapshotRoute } from '../src/query/snapshot.ts';
import { changesSql } from '../src/query/changes.ts';
import { diffSql, type DiffRoute } from '../src/query/diff.ts';
import { symbolSuggestions } from '../src/query/symbol-hint.ts';
import { historySql } from '../src/query/history.ts';
import type { Filters } from '../src/query/filters.ts';
import { tempHistory, tier, type TempHistory } from './query-fixture.ts';

/**
 * The plans must reach tier_version through an index: a line that mentions it must be a SEARCH
 * (an index range or lookup), never a SCAN (every row, or a whole index). The change feed is a
 * view over tier_version (and run_ledger), so its plans are held to the same rule.
 */
function assertIndexed(db: StoreDb, sql: string, ...params: unknown[]): string[] {
  const plan = db.sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>;
  const details = plan.map((row) => row.detail);
  const reads = details.filter((detail) => /^(SEARCH|SCAN) /.test(detail));
  assert.ok(
    reads.some((detail) => /tier_version/.test(detail)),
    `the plan reads the history: ${details.join(' | ')}`,
  );
  for (const detail of reads) {
    // The only scan allowed is of the feed's own co-routine (the rows the searches produced).
    if (detail === 'SCAN tier_change_feed') continue;
    assert.match(
      detail,
      /^SEARCH \w+ USING (COVERING )?INDEX |^SEARCH \w+ USING INTEGER PRIMARY KEY/,
      `indexed: ${details.join(' | ')}`,
    );
  }
  return details;
}

describe('query plans use the indexes', () => {
  let h: TempHistory;
  let db: StoreDb;
  before(() => {
    h = tempHistory();
    h.sweep('primary', '2026-10-01T00:00:00.000Z', [
      tier('META-USD', '20', 0.05, 0.025, 190_000),
      tier('AAPL-USD', '5', 0.2, 0.1, 1e6),
    ]);
    h.sweep('primary', '2026-10-01T00:05:00.000Z', [tier('META-USD', '20', 0.05, 0.025, 150_000)]);
    db = openDatabase(h.dbPath, { readonly: true });
  });
  after(() => {
    db.close();
    h.close();
  });

  const at = { at: Date.parse('2026-10-01T00:02:00.000Z') };
  const filterSets: Filters[] = [
    {},
    { accounts: ['primary'] },
    { symbols: ['*-USD'] },
    { accounts: ['sub*'], symbols: ['META-*'] },
  ];

  for (const route of ['from', 'to'] as SnapshotRoute[]) {
    for (const filters of filterSets) {
      it(`point in time, ${route} route, filters ${JSON.stringify(filters)}`, () => {
        const { sql, params } = snapshotSql(route, filters);
        const details = assertIndexed(db, sql, at, ...params);
        // Whatever the filters, the walk is along time: valid_from for the early route, valid_to for the late one.
        const constraint = route === 'from' ? /\(valid_from<\?/ : /\(valid_to>\?/;
        assert.ok(
          details.some((detail) => constraint.test(detail)),
          details.join(' | '),
        );
      });
    }
  }

  it('point in time for exact symbols goes through the symbol index', () => {
    const { sql, params } = snapshotSql('symbol', { symbols: ['META-USD', 'AAPL-USD'] });
    const details = assertIndexed(db, sql, at, ...params);
    assert.ok(
      details.some((detail) => detail.includes('tier_version_symbol_idx')),
      details.join(' | '),
    );
  });

  const feedSets = [
    {},
    { includeBaseline: true },
    { only: ['tightening' as const] },
    { change: ['removed' as const, 'changed' as const], only: ['mixed' as const] },
  ];
  for (const filters of filterSets) {
    for (const feed of feedSets) {
      it(`change feed with --since/--until, filters ${JSON.stringify(filters)}, ${JSON.stringify(feed)}`, () => {
        const { sql, named, params } = changesSql(
          { since: '2026-10-01T00:00:00.000Z', until: '2026-10-08T00:00:00.000Z' },
          filters,
          feed,
        );
        const details = assertIndexed(db, sql, named, ...params);
        // Openings walk valid_from, removals valid_to: both bounded by the window.
        assert.ok(
          details.some((detail) => /valid_from>\? AND valid_from<\?/.test(detail)),
          details.join(' | '),
        );
        assert.ok(
          details.some((detail) => /valid_to>\? AND valid_to<\?/.test(detail)),
          details.join(' | '),
        );
        const since = changesSql({ since: '2026-10-01T00:00:00.000Z' }, filters, feed);
        assertIndexed(db, since.sql, since.named, ...since.params);
      });
    }

    for (const after of ['from', 'to'] as DiffRoute[]) {
      for (const before of ['from', 'to'] as DiffRoute[]) {
        it(`diff sides (after ${after}, before ${before}), filters ${JSON.stringify(filters)}`, () => {
          const sql = diffSql(filters, { after, before });
          const named = { from: Date.parse('2026-10-01T00:00:00.000Z'), to: Date.parse('2026-10-08T00:00:00.000Z') };
          const afterPlan = assertIndexed(db, sql.after, named, ...sql.params).join(' | ');
          const beforePlan = assertIndexed(db, sql.before, named, ...sql.params).join(' | ');
          assert.match(afterPlan, after === 'from' ? /from_to_idx \(valid_from>\? AND valid_from<\?\)/ : /to_from_idx/);
          assert.match(
            beforePlan,
            before === 'from' ? /from_to_idx \(valid_from<\?\)/ : /to_from_idx \(valid_to>\? AND valid_to<\?\)/,
          );
        });
      }
    }
  }

  it('the change feed and the diff of exact symbols go through the symbol index', () => {
    const filters = { symbols: ['META-USD', 'AAPL-USD'] };
    const feed = changesSql({ since: '2026-10-01T00:00:00.000Z' }, filters);
    assert.match(assertIndexed(db, feed.sql, feed.named, ...feed.params).join(' | '), /tier_version_symbol_idx/);
    const sql = diffSql(filters, { after: 'symbol', before: 'symbol' });
    const named = { from: 0, to: Date.parse('2026-10-08T00:00:00.000Z') };
    assert.match(assertIndexed(db, sql.after, named, ...sql.params).join(' | '), /tier_version_symbol_idx/);
    assert.match(assertIndexed(db, sql.before, named, ...sql.params).join(' | '), /tier_version_symbol_idx/);
  });

  it('the symbol hint answers (it is asked only after an empty answer)', () => {
    assert.deepEqual(symbolSuggestions(db, { symbols: ['meta-usd'] }), ['META-USD']);
    assert.deepEqual(symbolSuggestions(db, { symbols: ['META-USD'] }), []);
    assert.deepEqual(symbolSuggestions(db, { symbols: ['nothing-like-it'] }), []);
  });

  it('one symbol’s history', () => {
    const { sql, params } = historySql('META-USD', {});
    assertIndexed(db, sql, ...params);
  });
});
