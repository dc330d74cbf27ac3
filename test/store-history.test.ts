import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { HistoryStore, type HistoryStoreOptions, type SweepOutcome } from '../src/store/history-store.ts';
import { isTierwatchError, type ErrorCode } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import type { Tier } from '../src/history/tier.ts';

const ENDPOINT = 'ws://127.0.0.1:7777';
const T0 = Date.UTC(2026, 9, 1, 12, 0, 0);

let dir: string;
let dbPath: string;
const opened: StoreDb[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-history-'));
  dbPath = path.join(dir, 'tierwatch.db');
});
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(options: HistoryStoreOptions = {}): { db: StoreDb; store: HistoryStore } {
  const db = openDatabase(dbPath);
  opened.push(db);
  return { db, store: new HistoryStore(db, options) };
}

function tier(
  symbol: string,
  leverage: string,
  im = 0.1,
  mm = 0.05,
  notional = 100_000,
  id: string | null = null,
): Tier {
  return { symbol, leverage, initial_margin: im, maintenance_margin: mm, max_notional: notional, exchange_id: id };
}

/** The instant of sweep number n (one minute apart). */
function at(n: number): Date {
  return new Date(T0 + n * 60_000);
}

function sweep(
  store: HistoryStore,
  n: number,
  tiers: Tier[],
  accountId = 'primary',
  maxRemovalRatio = 0.5,
): SweepOutcome {
  const runId = store.startRun({
    accountId,
    endpoint: ENDPOINT,
    publicKey: 'pk-demo',
    startedAt: new Date(at(n).getTime() - 1000),
  });
  return store.commitSweep(runId, {
    accountId,
    observedAt: at(n),
    finishedAt: new Date(at(n).getTime() + 5),
    tiers,
    pages: 1,
    maxRemovalRatio,
  });
}

function rows(db: StoreDb, query: string, ...params: unknown[]): Array<Record<string, unknown>> {
  return db.sqlite.prepare(query).all(...params) as Array<Record<string, unknown>>;
}

function count(db: StoreDb, table: string): number {
  return db.sqlite.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
}

/** Everything the history holds, for before/after comparisons. */
function dumpHistory(db: StoreDb): string {
  return JSON.stringify({
    versions: rows(db, 'SELECT * FROM tier_version ORDER BY version_id'),
    changes: rows(db, 'SELECT * FROM tier_changes ORDER BY observed_at, account_id, symbol, leverage_value, change'),
    meta: rows(db, 'SELECT * FROM meta ORDER BY key'),
  });
}

function rejectsWith(code: ErrorCode, pattern: RegExp = /./) {
  return (error: unknown) => isTierwatchError(error, code) && pattern.test(error.message);
}

describe('HistoryStore sweeps', () => {
  it('records every tier of the first sweep as added, and the run as ok', () => {
    const { db, store } = open();
    const tiers = [tier('AAPL-USD', '10'), tier('AAPL-USD', '20', 0.05, 0.025, 50_000, 'x7')];
    const outcome = sweep(store, 1, tiers);
    assert.deepEqual([outcome.added, outcome.removed, outcome.changed], [2, 0, 0]);
    assert.deepEqual(rows(db, 'SELECT * FROM tier_changes ORDER BY leverage'), [
      {
        run_id: 1,
        observed_at: at(1).toISOString(),
        account_id: 'primary',
        symbol: 'AAPL-USD',
        leverage: '10',
        change: 'added',
        changed_columns: '[]',
        old_initial_margin: null,
        new_initial_margin: 0.1,
        old_maintenance_margin: null,
        new_maintenance_margin: 0.05,
        old_max_notional: null,
        new_max_notional: 100_000,
        leverage_value: 10,
        classification: 'loosening',
        baseline: 1,
      },
      {
        run_id: 1,
        observed_at: at(1).toISOString(),
        account_id: 'primary',
        symbol: 'AAPL-USD',
        leverage: '20',
        change: 'added',
        changed_columns: '[]',
        old_initial_margin: null,
        new_initial_margin: 0.05,
        old_maintenance_margin: null,
        new_maintenance_margin: 0.025,
        old_max_notional: null,
        new_max_notional: 50_000,
        leverage_value: 20,
        classification: 'loosening',
        baseline: 1,
      },
    ]);
    assert.deepEqual(rows(db, 'SELECT * FROM tiers_current ORDER BY leverage'), [
      {
        account_id: 'primary',
        symbol: 'AAPL-USD',
        leverage: '10',
        initial_margin: 0.1,
        maintenance_margin: 0.05,
        max_notional: 100_000,
        exchange_id: null,
        valid_from: at(1).toISOString(),
        valid_to: null,
        run_id: 1,
        leverage_value: 10,
      },
      {
        account_id: 'primary',
        symbol: 'AAPL-USD',
        leverage: '20',
        initial_margin: 0.05,
        maintenance_margin: 0.025,
        max_notional: 50_000,
        exchange_id: 'x7',
        valid_from: at(1).toISOString(),
        valid_to: null,
        run_id: 1,
        leverage_value: 20,
      },
    ]);
    assert.deepEqual(rows(db, 'SELECT * FROM runs'), [
      {
        run_id: 1,
        account_id: 'primary',
        endpoint: ENDPOINT,
        started_at: new Date(at(1).getTime() - 1000).toISOString(),
        observed_at: at(1).toISOString(),
        finished_at: new Date(at(1).getTime() + 5).toISOString(),
        status: 'ok',
        pages: 1,
        tiers: 2,
        changes: 2,
        error_code: null,
        error_message: null,
        public_key: 'pk-demo',
        leader_epoch: null, // SQLite has no leader (issue 15)
      },
    ]);
    assert.deepEqual(
      outcome.changes.map((c) => [c.change, c.leverage, c.changed_columns]),
      [
        ['added', '10', []],
        ['added', '20', []],
      ],
    );
  });

  it('writes nothing but its ledger row for an unchanged sweep', () => {
    const { db, store } = open();
    const tiers = [tier('AAPL-USD', '10'), tier('META-USD', '5', 2 / 3, 1 / 3, 1e6)];
    sweep(store, 1, tiers);
    const before = dumpHistory(db);
    const outcome = sweep(store, 2, structuredClone(tiers));
    assert.deepEqual([outcome.added, outcome.removed, outcome.changed, outcome.changes.length], [0, 0, 0, 0]);
    assert.equal(dumpHistory(db), before);
    assert.deepEqual(rows(db, 'SELECT status, tiers, changes FROM runs WHERE run_id = 2'), [
      { status: 'ok', tiers: 2, changes: 0 },
    ]);
  });

  it('records A → B → A as two changes and keeps the B version, intervals chained at observed_at', () => {
    const { db, store } = open();
    sweep(store, 1, [tier('GOOG-USD', '10', 0.1, 0.05, 190_000)]);
    const toB = sweep(store, 2, [tier('GOOG-USD', '10', 0.1, 0.05, 150_000)]);
    const toA = sweep(store, 3, [tier('GOOG-USD', '10', 0.1, 0.05, 190_000)]);
    assert.deepEqual(
      toB.changes.map((c) => [c.change, c.changed_columns, c.old_max_notional, c.new_max_notional]),
      [['changed', ['max_notional'], 190_000, 150_000]],
    );
    assert.deepEqual(
      toA.changes.map((c) => [c.change, c.old_max_notional, c.new_max_notional]),
      [['changed', 150_000, 190_000]],
    );
    assert.deepEqual(
      rows(db, 'SELECT max_notional, valid_from, valid_to, run_id FROM tier_versions ORDER BY valid_from'),
      [
        { max_notional: 190_000, valid_from: at(1).toISOString(), valid_to: at(2).toISOString(), run_id: 1 },
        { max_notional: 150_000, valid_from: at(2).toISOString(), valid_to: at(3).toISOString(), run_id: 2 },
        { max_notional: 190_000, valid_from: at(3).toISOString(), valid_to: null, run_id: 3 },
      ],
    );
    assert.deepEqual(rows(db, `SELECT change, changed_columns FROM tier_changes WHERE change = 'changed'`), [
      { change: 'changed', changed_columns: '["max_notional"]' },
      { change: 'changed', changed_columns: '["max_notional"]' },
    ]);
  });

  it('closes a removed tier once, and opens a new version when it is listed again', () => {
    const { db, store } = open();
    const keep = [tier('CL-USD', '5'), tier('CL-USD', '10')];
    sweep(store, 1, [...keep, tier('PLTR-USD', '3', 0.4, 0.2, 10_000)]);
    assert.deepEqual(sweep(store, 2, keep).removed, 1);
    assert.deepEqual(sweep(store, 3, keep).changes, []);
    const back = sweep(store, 4, [...keep, tier('PLTR-USD', '3', 0.4, 0.2, 10_000)]);
    assert.equal(back.added, 1);
    assert.deepEqual(
      rows(
        db,
        `SELECT run_id, change, old_initial_margin, new_initial_margin FROM tier_changes WHERE symbol = 'PLTR-USD' ORDER BY observed_at`,
      ),
      [
        { run_id: 1, change: 'added', old_initial_margin: null, new_initial_margin: 0.4 },
        { run_id: 2, change: 'removed', old_initial_margin: 0.4, new_initial_margin: null },
        { run_id: 4, change: 'added', old_initial_margin: null, new_initial_margin: 0.4 },
      ],
    );
    assert.deepEqual(
      rows(db, `SELECT valid_from, valid_to FROM tier_versions WHERE symbol = 'PLTR-USD' ORDER BY valid_from`),
      [
        { valid_from: at(1).toISOString(), valid_to: at(2).toISOString() },
        { valid_from: at(4).toISOString(), valid_to: null },
      ],
    );
  });

  it('does not count a new exchange_id alone as a change; the version keeps the id it was opened with', () => {
    const { db, store } = open();
    sweep(store, 1, [tier('SP500-USD', '20', 0.05, 0.025, 1e6, 'row-1')]);
    const outcome = sweep(store, 2, [tier('SP500-USD', '20', 0.05, 0.025, 1e6, 'row-99')]);
    assert.equal(outcome.changes.length, 0);
    assert.deepEqual(rows(db, 'SELECT exchange_id, valid_to FROM tier_versions'), [
      { exchange_id: 'row-1', valid_to: null },
    ]);
    const changed = sweep(store, 3, [tier('SP500-USD', '20', 0.06, 0.025, 1e6, 'row-99')]);
    assert.equal(changed.changed, 1);
    assert.deepEqual(rows(db, 'SELECT exchange_id FROM tiers_current'), [{ exchange_id: 'row-99' }]);
  });

  it('sees the same float read twice as no change, also after a reload from disk', () => {
    const wire =
      '[{"symbol":"META-USD","leverage":"3","initial_margin":0.6666666666666666,"maintenance_margin":0.3333333333333333,"max_notional":1000000,"exchange_id":null}]';
    const first = open();
    sweep(first.store, 1, JSON.parse(wire) as Tier[]);
    assert.equal(sweep(first.store, 2, JSON.parse(wire) as Tier[]).changes.length, 0);
    first.db.close();
    const second = open(); // a new process: the current state comes back from SQLite
    assert.equal(sweep(second.store, 3, JSON.parse(wire) as Tier[]).changes.length, 0);
    assert.equal(count(second.db, 'tier_version'), 1);
  });

  it('keeps accounts independent', () => {
    const { db, store } = open();
    sweep(store, 1, [tier('AAPL-USD', '10'), tier('AAPL-USD', '20')], 'primary');
    sweep(store, 1, [tier('AAPL-USD', '10', 0.2)], 'sub-7');
    // The subaccount loses its only tier... to another leverage; primary is untouched by that.
    const sub = sweep(store, 2, [tier('AAPL-USD', '5')], 'sub-7', 1);
    const primary = sweep(store, 2, [tier('AAPL-USD', '10'), tier('AAPL-USD', '20')], 'primary');
    assert.deepEqual([sub.added, sub.removed], [1, 1]);
    assert.equal(primary.changes.length, 0);
    assert.deepEqual(
      rows(db, 'SELECT account_id, leverage, initial_margin FROM tiers_current ORDER BY account_id, leverage'),
      [
        { account_id: 'primary', leverage: '10', initial_margin: 0.1 },
        { account_id: 'primary', leverage: '20', initial_margin: 0.1 },
        { account_id: 'sub-7', leverage: '5', initial_margin: 0.1 },
      ],
    );
    assert.deepEqual(store.lastSuccessfulRun('sub-7'), { run_id: 3, observed_at: at(2).toISOString() });
    assert.deepEqual(store.lastSuccessfulRun(), { run_id: 4, observed_at: at(2).toISOString() });
    assert.equal(store.lastSuccessfulRun('nobody'), null);
  });
});

describe('HistoryStore guards and failures', () => {
  it('refuses a mass removal, stores nothing, and leaves the run for failRun', () => {
    const { db, store } = open();
    const tiers = [tier('A', '1'), tier('B', '1'), tier('C', '1'), tier('D', '1')];
    sweep(store, 1, tiers);
    const before = dumpHistory(db);
    const runId = store.startRun({ accountId: 'primary', endpoint: ENDPOINT, publicKey: null, startedAt: at(2) });
    assert.throws(
      () =>
        store.commitSweep(runId, {
          accountId: 'primary',
          observedAt: at(2),
          finishedAt: at(2),
          tiers: [tier('A', '1')],
          pages: 1,
          maxRemovalRatio: 0.5,
        }),
      rejectsWith('MASS_REMOVAL', /remove 3 of its 4 current tiers.*50%/),
    );
    assert.equal(dumpHistory(db), before);
    assert.equal(rows(db, 'SELECT status FROM runs WHERE run_id = ?', runId)[0]!.status, 'running');
    store.failRun(runId, {
      status: 'failed',
      code: 'MASS_REMOVAL',
      message: 'would remove 3 of 4',
      pages: 1,
      finishedAt: at(3),
      observedAt: at(2),
    });
    assert.deepEqual(
      rows(
        db,
        'SELECT status, error_code, error_message, pages, observed_at, finished_at, tiers, changes FROM runs WHERE run_id = ?',
        runId,
      ),
      [
        {
          status: 'failed',
          error_code: 'MASS_REMOVAL',
          error_message: 'would remove 3 of 4',
          pages: 1,
          observed_at: at(2).toISOString(),
          finished_at: at(3).toISOString(),
          tiers: null,
          changes: null,
        },
      ],
    );
    // Exactly half is allowed; the next sweep diffs against the untouched state.
    assert.equal(sweep(store, 4, [tier('A', '1'), tier('B', '1')]).removed, 2);
  });

  it('rolls back everything when the transaction fails at the last moment, and recovers on the next sweep', () => {
    let failNext = false;
    const { db, store } = open({
      beforeCommit: () => {
        if (failNext) throw new Error('injected failure before COMMIT');
      },
    });
    sweep(store, 1, [tier('A', '1'), tier('B', '1')]);
    const before = dumpHistory(db);
    failNext = true;
    assert.throws(() => sweep(store, 2, [tier('A', '1', 0.3), tier('C', '1')]), rejectsWith('INTERNAL', /injected/));
    failNext = false;
    assert.equal(dumpHistory(db), before);
    assert.deepEqual(
      rows(db, 'SELECT status FROM runs ORDER BY run_id').map((r) => r.status),
      ['ok', 'running'],
    );
    // The in-memory state was not touched by the failed attempt.
    const retry = sweep(store, 3, [tier('A', '1', 0.3), tier('C', '1')]);
    assert.deepEqual([retry.added, retry.removed, retry.changed], [1, 1, 1]);
  });

  it('rolls back a failure in the middle of the writes (a trigger refusing one version row)', () => {
    const { db, store } = open();
    sweep(store, 1, [tier('A', '1'), tier('B', '1')]);
    db.sqlite.exec(`CREATE TRIGGER refuse_z BEFORE INSERT ON tier_version WHEN NEW.symbol = 'Z'
                    BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END`);
    const before = dumpHistory(db);
    assert.throws(
      () => sweep(store, 2, [tier('A', '1', 0.2), tier('B', '1'), tier('Y', '1'), tier('Z', '1')]),
      rejectsWith('INTERNAL', /refused/),
    );
    assert.equal(dumpHistory(db), before);
    db.sqlite.exec('DROP TRIGGER refuse_z');
    assert.deepEqual(sweep(store, 3, [tier('A', '1', 0.2), tier('B', '1')]).changed, 1);
  });

  it('maps a full disk to DISK_FULL and stores nothing', () => {
    const { db, store } = open();
    sweep(store, 1, [tier('A', '1')]);
    const before = dumpHistory(db);
    const pages = db.sqlite.pragma('page_count', { simple: true }) as number;
    db.sqlite.pragma(`max_page_count = ${pages + 1}`);
    const many = Array.from({ length: 2000 }, (_, i) => tier(`SYM-${i}`, '10'));
    assert.throws(() => sweep(store, 2, [tier('A', '1'), ...many], 'primary', 1), rejectsWith('DISK_FULL', /full/));
    assert.equal(dumpHistory(db), before);
  });

  it('refuses a sweep observed no later than the previous one, and a run that is not running', () => {
    const { store } = open();
    sweep(store, 5, [tier('A', '1')]);
    assert.throws(
      () => sweep(store, 5, [tier('A', '1', 0.2)]),
      rejectsWith('CLOCK_BEHIND', /at the same millisecond as/),
    );
    const runId = store.startRun({ accountId: 'primary', endpoint: ENDPOINT, publicKey: null, startedAt: at(6) });
    const input = {
      accountId: 'other',
      observedAt: at(6),
      finishedAt: at(6),
      tiers: [],
      pages: 0,
      maxRemovalRatio: 0.5,
    };
    assert.throws(() => store.commitSweep(runId, input), rejectsWith('INTERNAL', /belongs to account primary/));
    assert.throws(() => store.commitSweep(999, input), rejectsWith('INTERNAL', /does not exist/));
    store.failRun(runId, { status: 'aborted', code: 'ABORTED', message: 'SIGTERM', pages: 0, finishedAt: at(6) });
    assert.throws(
      () => store.commitSweep(runId, { ...input, accountId: 'primary' }),
      rejectsWith('INTERNAL', /is aborted/),
    );
  });

  it('leaves a run that is no longer running alone in failRun, with a warning', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const { db, store } = open({ logger: createLogger({ level: 'warn', destination }) });
    sweep(store, 1, [tier('A', '1')]);
    store.failRun(1, { status: 'failed', code: 'QFEX_TIMEOUT', message: 'late', pages: 1, finishedAt: at(2) });
    assert.deepEqual(rows(db, 'SELECT status, error_code FROM runs'), [{ status: 'ok', error_code: null }]);
    assert.match(lines.join(''), /failRun: the run was not running/);
  });

  it('marks runs a crash left running as abandoned', () => {
    const { db, store } = open();
    sweep(store, 1, [tier('A', '1')]);
    store.startRun({ accountId: 'primary', endpoint: ENDPOINT, publicKey: null, startedAt: at(2) });
    store.startRun({ accountId: 'sub', endpoint: ENDPOINT, publicKey: null, startedAt: at(2) });
    assert.equal(store.markAbandonedRuns(at(9)), 2);
    assert.equal(store.markAbandonedRuns(at(10)), 0);
    assert.deepEqual(rows(db, 'SELECT run_id, status, finished_at FROM runs ORDER BY run_id'), [
      { run_id: 1, status: 'ok', finished_at: new Date(at(1).getTime() + 5).toISOString() },
      { run_id: 2, status: 'abandoned', finished_at: at(9).toISOString() },
      { run_id: 3, status: 'abandoned', finished_at: at(9).toISOString() },
    ]);
  });
});

describe('HistoryStore endpoint binding', () => {
  it('binds on first use, accepts the same endpoint again, refuses another naming both', () => {
    const { store } = open();
    store.bindEndpoint('wss://trade.qfex.com');
    store.bindEndpoint('wss://trade.qfex.com/');
    store.bindEndpoint('wss://trade.qfex.com/?api_key=abc');
    assert.throws(
      () => store.bindEndpoint('wss://trade.qfex.io'),
      rejectsWith('ENDPOINT_MISMATCH', /wss:\/\/trade\.qfex\.com\/.*wss:\/\/trade\.qfex\.io\//),
    );
    const reopened = open();
    assert.throws(() => reopened.store.bindEndpoint('wss://trade.qfex.io'), rejectsWith('ENDPOINT_MISMATCH'));
  });
});

describe('HistoryStore in-memory state', () => {
  it('reloads when another connection wrote since (PRAGMA data_version)', () => {
    const a = open();
    const b = open();
    sweep(a.store, 1, [tier('A', '1', 0.1), tier('B', '1')]);
    // Another connection (say a `tierwatch collect` next to the daemon) stores a change.
    assert.equal(sweep(b.store, 2, [tier('A', '1', 0.2), tier('B', '1')]).changed, 1);
    // A must not diff against its stale copy (which still says 0.1).
    const outcome = sweep(a.store, 3, [tier('A', '1', 0.2), tier('B', '1')]);
    assert.equal(outcome.changes.length, 0);
    assert.equal(count(a.db, 'tier_version'), 3);
    const back = sweep(a.store, 4, [tier('A', '1', 0.1), tier('B', '1')]);
    assert.deepEqual(
      back.changes.map((c) => [c.old_initial_margin, c.new_initial_margin]),
      [[0.2, 0.1]],
    );
  });
});

describe('indexes for the questions of issue 3', () => {
  function plan(db: StoreDb, query: string, ...params: unknown[]): string {
    return (db.sqlite.prepare(`EXPLAIN QUERY PLAN ${query}`).all(...params) as Array<{ detail: string }>)
      .map((row) => row.detail)
      .join(' | ');
  }

  it('answers point-in-time, change feed and symbol history through an index', () => {
    const { db } = open();
    const T = at(1).toISOString();
    const cases: Array<[string, RegExp]> = [
      // People's SQL over the views: a symbol goes through the symbol index (times are text in the
      // views and epoch ms in tier_version, so time bounds on a view are filters, not index bounds;
      // the query commands bound time on tier_version itself: test/query-plan.test.ts).
      [`SELECT * FROM tier_versions WHERE symbol = 'A' ORDER BY valid_from`, /USING INDEX tier_version_symbol_idx/],
      [`SELECT * FROM tier_changes WHERE symbol = 'A'`, /USING INDEX tier_version_symbol_idx/],
      [`SELECT * FROM tiers_current WHERE account_id = 'primary'`, /USING (COVERING )?INDEX tier_version_to_from_idx/],
      [
        `SELECT run_id, observed_at FROM run_ledger WHERE status = 'ok' ORDER BY observed_at DESC LIMIT 1`,
        /USING (COVERING )?INDEX run_ledger_ok_observed_idx/,
      ],
      [`SELECT * FROM tier_versions WHERE valid_from <= '${T}'`, /SCAN tier_version/],
    ];
    for (const [query, expected] of cases) assert.match(plan(db, query), expected, query);
  });
});
