/**
 * Property: for random sequences of sweeps over several accounts, the stored history reproduces the
 * state of a model kept by the test at every observed time, records exactly the model's changes
 * (with their direction and whether they are the account's baseline), and writes nothing for an
 * identical sweep. Expected values come from the model only. A second test plants bugs in a stored
 * history and checks that the same comparison catches each of them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { isTierwatchError } from '../src/errors.ts';
import { TRACKED_COLUMNS, type Tier, type TierValues } from '../src/history/tier.ts';

const ACCOUNTS = ['primary', 'sub-1', 'sub-2'];
const SYMBOLS = ['AAPL-USD', 'META-USD', 'CL-USD'];
const LEVERAGES = ['1', '2.5', '20'];
// Few values, so A → B → A and exact repeats are frequent; thirds test float identity.
const MARGINS = [0.1, 0.2, 0.6666666666666666, 0.3333333333333333];
const NOTIONALS = [100_000, 150_000, 1e6];
const MAX_REMOVAL_RATIO = 0.5;
const T0 = Date.UTC(2026, 0, 1);

type AccountModel = Map<string, TierValues & { symbol: string; leverage: string }>;
type ModelState = Map<string, AccountModel>;

interface Step {
  account: string;
  /** Replay the account's previous list exactly (with other exchange ids). */
  repeat: boolean;
  /** Close and reopen the database before this step: the store reloads from disk. */
  reopen: boolean;
  entries: Array<{
    symbol: string;
    leverage: string;
    im: number;
    mm: number;
    notional: number;
    exchangeId: string | null;
  }>;
}

const stepArbitrary: fc.Arbitrary<Step> = fc.record({
  account: fc.constantFrom(...ACCOUNTS),
  repeat: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
  reopen: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  entries: fc.array(
    fc.record({
      symbol: fc.constantFrom(...SYMBOLS),
      leverage: fc.constantFrom(...LEVERAGES),
      im: fc.constantFrom(...MARGINS),
      mm: fc.constantFrom(...MARGINS),
      notional: fc.constantFrom(...NOTIONALS),
      exchangeId: fc.option(fc.constantFrom('r1', 'r2', 'r3')),
    }),
    { maxLength: 9 },
  ),
});

interface ExpectedChange {
  account_id: string;
  symbol: string;
  leverage: string;
  change: 'added' | 'removed' | 'changed';
  changed_columns: string;
  old: [number, number, number] | null;
  new: [number, number, number] | null;
  classification: 'tightening' | 'loosening' | 'mixed';
  /** 1 for the changes of the account's first successful sweep. */
  baseline: 0 | 1;
}

/** The direction of a change, worked out here from first principles (not by the code under test). */
function modelDirection(old: TierValues | null, now: TierValues | null): ExpectedChange['classification'] {
  if (now === null) return 'tightening';
  if (old === null) return 'loosening';
  const tighter =
    now.initial_margin > old.initial_margin ||
    now.maintenance_margin > old.maintenance_margin ||
    now.max_notional < old.max_notional;
  const looser =
    now.initial_margin < old.initial_margin ||
    now.maintenance_margin < old.maintenance_margin ||
    now.max_notional > old.max_notional;
  return tighter && !looser ? 'tightening' : looser && !tighter ? 'loosening' : 'mixed';
}

const keyOf = (symbol: string, leverage: string) => `${symbol}|${leverage}`;
const triple = (v: TierValues): [number, number, number] => [v.initial_margin, v.maintenance_margin, v.max_notional];

/**
 * The erosion guard's reference, restated: the largest successful sweep so far (every step of a case
 * is within the 24 h window), except that a sweep stored although it lost more than the ratio of it
 * becomes the new reference. With one ratio for every sweep, that happens only at the baseline.
 */
function modelErosionReference(okCounts: readonly number[]): number {
  let reference = 0;
  for (const count of okCounts) {
    reference =
      reference > 0 && (reference - count) / reference > MAX_REMOVAL_RATIO ? count : Math.max(reference, count);
  }
  return reference;
}

/**
 * What the model says one sweep changes, or 'refused' when a removal guard must fire: more than the
 * ratio of the current tiers gone, or more than the ratio of the largest recent sweep (`okCounts`,
 * the tier counts of the account's successful sweeps, oldest first).
 */
function modelChanges(
  current: AccountModel,
  account: string,
  tiers: Tier[],
  baseline: 0 | 1,
  okCounts: readonly number[] = [],
): ExpectedChange[] | 'refused' {
  const changes: ExpectedChange[] = [];
  const incoming = new Map(tiers.map((t) => [keyOf(t.symbol, t.leverage), t]));
  let removed = 0;
  for (const [key, old] of current) {
    if (!incoming.has(key)) {
      removed += 1;
      changes.push({
        account_id: account,
        symbol: old.symbol,
        leverage: old.leverage,
        change: 'removed',
        changed_columns: '[]',
        old: triple(old),
        new: null,
        classification: modelDirection(old, null),
        baseline,
      });
    }
  }
  if (current.size > 0 && removed / current.size > MAX_REMOVAL_RATIO) return 'refused';
  const reference = modelErosionReference(okCounts);
  if (reference > 0 && (reference - tiers.length) / reference > MAX_REMOVAL_RATIO) return 'refused';
  for (const [key, t] of incoming) {
    const old = current.get(key);
    if (old === undefined) {
      changes.push({
        account_id: account,
        symbol: t.symbol,
        leverage: t.leverage,
        change: 'added',
        changed_columns: '[]',
        old: null,
        new: triple(t),
        classification: modelDirection(null, t),
        baseline,
      });
      continue;
    }
    const columns = TRACKED_COLUMNS.filter((c) => old[c] !== t[c]);
    if (columns.length > 0) {
      changes.push({
        account_id: account,
        symbol: t.symbol,
        leverage: t.leverage,
        change: 'changed',
        changed_columns: JSON.stringify(columns),
        old: triple(old),
        new: triple(t),
        classification: modelDirection(old, t),
        baseline,
      });
    }
  }
  return changes;
}

function sortChanges(changes: ExpectedChange[]): ExpectedChange[] {
  return [...changes].sort((a, b) =>
    `${a.symbol}|${a.leverage}|${a.change}`.localeCompare(`${b.symbol}|${b.leverage}|${b.change}`),
  );
}

function storedChanges(db: StoreDb, runId: number): ExpectedChange[] {
  type Row = Omit<ExpectedChange, 'old' | 'new'> &
    Record<`${'old' | 'new'}_${(typeof TRACKED_COLUMNS)[number]}`, number | null>;
  const rows = db.sqlite.prepare('SELECT * FROM tier_changes WHERE run_id = ?').all(runId) as Row[];
  const values = (im: number | null, mm: number | null, mn: number | null): [number, number, number] | null =>
    im === null || mm === null || mn === null ? null : [im, mm, mn];
  return rows.map((r) => ({
    account_id: r.account_id,
    symbol: r.symbol,
    leverage: r.leverage,
    change: r.change,
    changed_columns: r.changed_columns,
    old: values(r.old_initial_margin, r.old_maintenance_margin, r.old_max_notional),
    new: values(r.new_initial_margin, r.new_maintenance_margin, r.new_max_notional),
    classification: r.classification,
    baseline: r.baseline,
  }));
}

function snapshotAt(db: StoreDb, at: string): string[] {
  return (
    db.sqlite
      .prepare(
        `SELECT account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional FROM tier_versions
          WHERE valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)`,
      )
      .all(at, at) as Array<Record<string, unknown>>
  )
    .map((r) =>
      JSON.stringify([r.account_id, r.symbol, r.leverage, r.initial_margin, r.maintenance_margin, r.max_notional]),
    )
    .sort();
}

function modelSnapshot(model: ModelState): string[] {
  const rows: string[] = [];
  for (const [account, tiers] of model) {
    for (const t of tiers.values()) {
      rows.push(
        JSON.stringify([account, t.symbol, t.leverage, t.initial_margin, t.maintenance_margin, t.max_notional]),
      );
    }
  }
  return rows.sort();
}

function count(db: StoreDb, table: string): number {
  return db.sqlite.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
}

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-property-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('history store against a model', () => {
  it('reproduces the model at every observed time and records exactly its changes', () => {
    let caseNumber = 0;
    fc.assert(
      fc.property(fc.array(stepArbitrary, { minLength: 1, maxLength: 14 }), (steps) => {
        const dbPath = path.join(dir, `case-${caseNumber++}.db`);
        let db = openDatabase(dbPath);
        let store = new HistoryStore(db);
        const model: ModelState = new Map(ACCOUNTS.map((a) => [a, new Map()]));
        const lastSent = new Map<string, Tier[]>();
        const swept = new Set<string>();
        const okCounts = new Map<string, number[]>(ACCOUNTS.map((a) => [a, []]));
        const checkpoints: Array<{ at: string; snapshot: string[] }> = [];
        try {
          steps.forEach((step, index) => {
            if (step.reopen) {
              db.close();
              db = openDatabase(dbPath);
              store = new HistoryStore(db);
            }
            const observedAt = new Date(T0 + (index + 1) * 60_000);
            // A sweep lists each tier once: the first entry for a key wins.
            const unique = new Map<string, Step['entries'][number]>();
            for (const e of step.entries) {
              if (!unique.has(keyOf(e.symbol, e.leverage))) unique.set(keyOf(e.symbol, e.leverage), e);
            }
            let tiers: Tier[] = [...unique.values()].map((e) => ({
              symbol: e.symbol,
              leverage: e.leverage,
              initial_margin: e.im,
              maintenance_margin: e.mm,
              max_notional: e.notional,
              exchange_id: e.exchangeId,
            }));
            const previous = lastSent.get(step.account);
            const repeat = step.repeat && previous !== undefined;
            if (repeat) tiers = previous.map((t) => ({ ...t, exchange_id: `again-${index}` }));
            // What the wire would give a second time: the same text parsed afresh.
            tiers = JSON.parse(JSON.stringify(tiers)) as Tier[];

            const current = model.get(step.account)!;
            const baseline = swept.has(step.account) ? 0 : 1;
            const expected = modelChanges(current, step.account, tiers, baseline, okCounts.get(step.account));
            const versionsBefore = count(db, 'tier_version');
            const changesBefore = count(db, 'tier_changes');
            const runId = store.startRun({
              accountId: step.account,
              endpoint: 'ws://127.0.0.1:1',
              publicKey: null,
              startedAt: observedAt,
            });
            const sweep = {
              accountId: step.account,
              observedAt,
              finishedAt: observedAt,
              tiers,
              pages: 1,
              maxRemovalRatio: MAX_REMOVAL_RATIO,
            };

            if (expected === 'refused') {
              assert.throws(
                () => store.commitSweep(runId, sweep),
                (e: unknown) => isTierwatchError(e, 'MASS_REMOVAL'),
              );
              store.failRun(runId, {
                status: 'failed',
                code: 'MASS_REMOVAL',
                message: 'refused',
                pages: 1,
                finishedAt: observedAt,
              });
              assert.equal(count(db, 'tier_version'), versionsBefore);
              assert.equal(count(db, 'tier_changes'), changesBefore);
              return;
            }
            const outcome = store.commitSweep(runId, sweep);
            lastSent.set(step.account, tiers);
            okCounts.get(step.account)!.push(tiers.length);
            assert.deepEqual(sortChanges(storedChanges(db, runId)), sortChanges(expected));
            assert.equal(outcome.changes.length, expected.length);
            assert.equal(outcome.baseline, baseline === 1, 'the outcome says whether this was the baseline');
            swept.add(step.account);
            if (repeat) {
              assert.equal(count(db, 'tier_version'), versionsBefore, 'an identical sweep opens no version');
              assert.equal(count(db, 'tier_changes'), changesBefore, 'an identical sweep records no change');
            }
            // Advance the model.
            current.clear();
            for (const t of tiers) current.set(keyOf(t.symbol, t.leverage), t);
            checkpoints.push({ at: observedAt.toISOString(), snapshot: modelSnapshot(model) });
          });

          assert.deepEqual(snapshotAt(db, new Date(T0).toISOString()), [], 'nothing before the first sweep');
          for (const { at, snapshot } of checkpoints) {
            assert.deepEqual(snapshotAt(db, at), snapshot, `state at ${at}`);
            // Half-open intervals: half a minute later (before the next sweep) nothing has moved.
            assert.deepEqual(
              snapshotAt(db, new Date(Date.parse(at) + 30_000).toISOString()),
              snapshot,
              `state after ${at}`,
            );
          }
          const openTwice = db.sqlite
            .prepare(
              'SELECT count(*) FROM (SELECT 1 FROM tier_version WHERE valid_to IS NULL GROUP BY account_id, symbol, leverage HAVING count(*) > 1)',
            )
            .pluck()
            .get();
          assert.equal(openTwice, 0);
        } finally {
          db.close();
          fs.rmSync(dbPath, { force: true });
          fs.rmSync(`${dbPath}-wal`, { force: true });
          fs.rmSync(`${dbPath}-shm`, { force: true });
        }
      }),
      { numRuns: 40 },
    );
  });

  it('catches planted bugs: a lost baseline flag, a broken chain of versions, a wrong value, a second baseline', () => {
    const dbPath = path.join(dir, 'planted.db');
    const db = openDatabase(dbPath);
    try {
      const store = new HistoryStore(db);
      const model: ModelState = new Map(ACCOUNTS.map((a) => [a, new Map()]));
      const expectedByRun = new Map<number, ExpectedChange[]>();
      const t = (symbol: string, leverage: string, im: number, mm: number, notional: number): Tier => ({
        symbol,
        leverage,
        initial_margin: im,
        maintenance_margin: mm,
        max_notional: notional,
        exchange_id: null,
      });
      const sweeps: Array<[string, Tier[]]> = [
        ['primary', [t('AAPL-USD', '1', 0.2, 0.1, 1e6), t('META-USD', '20', 0.1, 0.1, 150_000)]],
        ['sub-1', [t('AAPL-USD', '1', 0.2, 0.1, 1e6)]],
        ['primary', [t('AAPL-USD', '1', 0.2, 0.1, 100_000), t('META-USD', '20', 0.2, 0.1, 1e6)]],
        [
          'primary',
          [
            t('AAPL-USD', '1', 0.2, 0.1, 100_000),
            t('META-USD', '20', 0.2, 0.1, 1e6),
            t('CL-USD', '2.5', 0.6666666666666666, 0.3333333333333333, 1e6),
          ],
        ],
        [
          'primary',
          [t('AAPL-USD', '1', 0.2, 0.1, 100_000), t('CL-USD', '2.5', 0.6666666666666666, 0.3333333333333333, 1e6)],
        ],
      ];
      sweeps.forEach(([account, tiers], index) => {
        const observedAt = new Date(T0 + (index + 1) * 60_000);
        const current = model.get(account)!;
        const expected = modelChanges(current, account, tiers, index === 0 || account === 'sub-1' ? 1 : 0);
        assert.notEqual(expected, 'refused');
        const runId = store.startRun({
          accountId: account,
          endpoint: 'ws://127.0.0.1:1',
          publicKey: null,
          startedAt: observedAt,
        });
        store.commitSweep(runId, {
          accountId: account,
          observedAt,
          finishedAt: observedAt,
          tiers,
          pages: 1,
          maxRemovalRatio: 1,
        });
        expectedByRun.set(runId, expected as ExpectedChange[]);
        current.clear();
        for (const tier of tiers) current.set(keyOf(tier.symbol, tier.leverage), tier);
      });
      const matchesModel = (): boolean =>
        [...expectedByRun].every(([runId, expected]) => {
          try {
            assert.deepEqual(sortChanges(storedChanges(db, runId)), sortChanges(expected));
            return true;
          } catch {
            return false;
          }
        });
      assert.ok(matchesModel(), 'the unplanted history matches the model');
      const bugs: Array<[string, string]> = [
        ['the baseline flag lost', 'UPDATE run_ledger SET baseline = 0 WHERE run_id = 1'],
        ['a second baseline', 'UPDATE run_ledger SET baseline = 1 WHERE run_id = 3'],
        [
          'a changed version not linked to the one it replaced',
          'UPDATE tier_version SET prev_version_id = NULL WHERE prev_version_id IS NOT NULL',
        ],
        [
          'a new value that tightens instead of loosening',
          `UPDATE tier_version SET max_notional = 1 WHERE symbol = 'META-USD' AND prev_version_id IS NOT NULL`,
        ],
        [
          'a removal closed at the wrong time',
          `UPDATE tier_version SET valid_to = valid_to + 1 WHERE symbol = 'META-USD' AND valid_to IS NOT NULL AND version_id NOT IN (SELECT prev_version_id FROM tier_version WHERE prev_version_id IS NOT NULL)`,
        ],
      ];
      for (const [bug, sql] of bugs) {
        db.sqlite.exec('BEGIN');
        try {
          assert.ok(db.sqlite.prepare(sql).run().changes > 0, `${bug}: planted`);
          assert.equal(matchesModel(), false, `${bug}: caught`);
        } finally {
          db.sqlite.exec('ROLLBACK');
        }
      }
    } finally {
      db.close();
    }
  });
});
