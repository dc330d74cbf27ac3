import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { snapshotSql, type SnapshotRoute } from '../src/query/snapshot.ts';
import { changesSql, windowSql } from '../src/query/changes.ts';
import { historySql } from '../src/query/history.ts';
import type { Filters } from '../src/query/filters.ts';
import { tempHistory, tier, type TempHistory } from './query-fixture.ts';

/**
 * The plans must reach tier_version and tier_change through an index: a line that mentions either
 * table must be a SEARCH (an index range or lookup), never a SCAN (every row, or a whole index).
 */
function assertIndexed(db: StoreDb, sql: string, ...params: unknown[]): string[] {
  const plan = db.sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>;
  const details = plan.map((row) => row.detail);
  const touching = details.filter((detail) => /\btier_(version|change)\b/.test(detail));
  assert.ok(touching.length > 0, `the plan reads the history: ${details.join(' | ')}`);
  for (const detail of touching) {
    assert.match(detail, /^SEARCH tier_(version|change) USING (COVERING )?INDEX /, `indexed: ${details.join(' | ')}`);
  }
  return details;
}

describe('query plans use the indexes', () => {
  let h: TempHistory;
  let db: StoreDb;
  before(() => {
    h = tempHistory();
    h.sweep('primary', '2026-10-01T00:00:00.000Z', [tier('META-USD', '20', 0.05, 0.025, 190_000), tier('AAPL-USD', '5', 0.2, 0.1, 1e6)]);
    h.sweep('primary', '2026-10-01T00:05:00.000Z', [tier('META-USD', '20', 0.05, 0.025, 150_000)]);
    db = openDatabase(h.dbPath, { readonly: true });
  });
  after(() => {
    db.close();
    h.close();
  });

  const at = { at: '2026-10-01T00:02:00.000Z' };
  const filterSets: Filters[] = [{}, { accounts: ['primary'] }, { symbols: ['*-USD'] }, { accounts: ['sub*'], symbols: ['META-*'] }];

  for (const route of ['from', 'to'] as SnapshotRoute[]) {
    for (const filters of filterSets) {
      it(`point in time, ${route} route, filters ${JSON.stringify(filters)}`, () => {
        const { sql, params } = snapshotSql(route, filters);
        const details = assertIndexed(db, sql, at, ...params);
        // Whatever the filters, the walk is along time: valid_from for the early route, valid_to for the late one.
        const constraint = route === 'from' ? /\(valid_from<\?/ : /\(valid_to>\?/;
        assert.ok(details.some((detail) => constraint.test(detail)), details.join(' | '));
      });
    }
  }

  it('point in time for exact symbols goes through the (symbol, valid_from) index', () => {
    const { sql, params } = snapshotSql('symbol', { symbols: ['META-USD', 'AAPL-USD'] });
    const details = assertIndexed(db, sql, at, ...params);
    assert.ok(details.some((detail) => detail.includes('tier_version_symbol_from_idx')), details.join(' | '));
  });

  for (const filters of filterSets) {
    it(`change feed with --since/--until, filters ${JSON.stringify(filters)}`, () => {
      const { sql, named, params } = changesSql({ since: '2026-10-01T00:00:00.000Z', until: '2026-10-08T00:00:00.000Z' }, filters);
      const details = assertIndexed(db, sql, named, ...params);
      assert.ok(details.some((detail) => /observed_at>\? AND observed_at<\?/.test(detail)), details.join(' | '));
      const since = changesSql({ since: '2026-10-01T00:00:00.000Z' }, filters);
      assertIndexed(db, since.sql, since.named, ...since.params);
    });

    it(`diff window, filters ${JSON.stringify(filters)}`, () => {
      const { sql, params } = windowSql(filters);
      assertIndexed(db, sql, { after: '2026-10-01T00:00:00.000Z', upTo: '2026-10-08T00:00:00.000Z' }, ...params);
    });
  }

  it('one symbol’s history', () => {
    const { sql, params } = historySql('META-USD', {});
    assertIndexed(db, sql, ...params);
  });
});
