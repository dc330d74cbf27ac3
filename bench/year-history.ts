/**
 * A synthetic year of history for the query benchmark: five-minute sweeps of a 10,000-tier
 * universe (105,120 runs), written straight into the store's own tables and indexes with prepared
 * statements in one transaction, row for row what HistoryStore would have written (a 'running'
 * ledger row finished as 'ok' — the first one as the baseline —, versions closed and opened at the
 * run's observed_at, a changed tier's new version pointing at the one it replaced). It also keeps
 * the model's answers, so every timed query can be checked for size.
 *
 * Change rates (per sweep, seeded): one tier-level edit on average (0–2 tiers), a whole ladder
 * (10 tiers) re-priced about once an hour, a new symbol listed about once a week and one delisted
 * about once a month, and about one sweep in a thousand failed (no changes). That is about two
 * changes a sweep, ~200,000 a year: busier than a real exchange, so the figures err on the slow side.
 */
import fs from 'node:fs';
import { openDatabase } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import type { Tier } from '../src/history/tier.ts';
import { silentLogger } from '../src/log.ts';
import { makeTier, syntheticUniverse } from '../src/sim/index.ts';
import { seededRandom } from '../src/sim/random.ts';
import { nowMs, round } from './stats.ts';

export const YEAR_TIERS = 10_000;
export const SWEEP_MS = 5 * 60_000;
export const YEAR_RUNS = 365 * 24 * 12;
const WEEK_RUNS = 7 * 24 * 12;
const START = Date.parse('2025-01-01T00:00:00.000Z');
/** The symbol whose snapshot and history are asked for; never delisted, so its ladder is always 10 tiers. */
export const QUERY_SYMBOL = 'S000042-USD';

interface Live {
  version_id: number;
  tier: Tier;
}

/** What the queries must return, from the model that wrote the history. */
export interface YearExpectations {
  firstObservedAt: string;
  lastObservedAt: string;
  /** Snapshot instants and the number of tiers live at each. */
  snapshotPoints: Array<{ at: string; tiers: number }>;
  weekFrom: string;
  weekDiffRows: number;
  yearDiffRows: number;
  /** `changes --since 7d` at lastObservedAt: the instant and the count. */
  changesSince: string;
  changesSinceRows: number;
  historyRows: number;
  queryLadder: number;
}

export interface YearHistory {
  runs: number;
  okRuns: number;
  versions: number;
  changes: number;
  build_s: number;
  bytes: number;
  expectations: YearExpectations;
}

/** The leverage levels of every synthetic symbol (those of syntheticUniverse). */
const LEVELS = ['1', '2', '3', '4', '5', '10', '15', '20', '25', '30'] as const;
const keyOf = (symbol: string, leverage: string) => `${symbol}\u0000${leverage}`;
const valuesKey = (tier: Tier) => `${tier.initial_margin}|${tier.maintenance_margin}|${tier.max_notional}`;

/** Builds the year at `dbPath` (a new file) and returns its shape and the model's answers. */
export function buildYearHistory(dbPath: string): YearHistory {
  const began = nowMs();
  const random = seededRandom(2025);
  const db = openDatabase(dbPath, { logger: silentLogger() });
  const sqlite = db.sqlite;
  // One big transaction: a cache large enough to hold it keeps SQLite from spilling pages mid-way.
  sqlite.pragma('cache_size = -262144');

  const insertRun = sqlite.prepare(
    `INSERT INTO run_ledger (run_id, account_id, endpoint, public_key, started_at, observed_at, finished_at, status, pages, tiers, changes, error_code, error_message)
     VALUES (?, 'primary', 'wss://trade.qfex.com/', 'qfex_pub_bench', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const openVersion = sqlite.prepare(
    `INSERT INTO tier_version (version_id, account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id, valid_from, run_id, prev_version_id)
     VALUES (?, 'primary', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const closeVersion = sqlite.prepare('UPDATE tier_version SET valid_to = ? WHERE version_id = ? AND valid_to IS NULL');
  const finishRun = sqlite.prepare(
    `UPDATE run_ledger SET status = 'ok', observed_at = ?, finished_at = ?, pages = ?, tiers = ?, changes = ?, baseline = ? WHERE run_id = ? AND status = 'running'`,
  );
  const ladderOf = (symbol: string) => LEVELS.map((leverage) => keyOf(symbol, leverage)).filter((key) => live.has(key));

  const live = new Map<string, Live>();
  const liveKeys: string[] = [];
  const symbols = new Set<string>();
  let nextVersion = 1;
  let versions = 0;
  let changeRows = 0;
  let okRuns = 0;
  let historyRows = 0;
  let nextSymbol = 0;
  const perRun: Array<{ observedAt: string; changes: number }> = [];
  const liveCounts: number[] = [];
  let weekStartState: Map<string, string> | null = null;
  let firstState: Map<string, string> | null = null;
  let weekFrom = '';

  const open = (tier: Tier, runId: number, at: string, previous: number | null) => {
    const id = nextVersion++;
    openVersion.run(
      id,
      tier.symbol,
      tier.leverage,
      tier.initial_margin,
      tier.maintenance_margin,
      tier.max_notional,
      tier.exchange_id,
      Date.parse(at),
      runId,
      previous,
    );
    versions += 1;
    if (tier.symbol === QUERY_SYMBOL) historyRows += 1;
    return id;
  };
  const snapshotState = () => new Map([...live].map(([key, entry]) => [key, valuesKey(entry.tier)]));
  const toTier = (sim: ReturnType<typeof makeTier>): Tier => ({
    symbol: sim.symbol,
    leverage: sim.leverage,
    exchange_id: sim.id,
    initial_margin: sim.initial_margin,
    maintenance_margin: sim.maintenance_margin,
    max_notional: sim.max_notional,
  });

  // The store's own indexes, dropped for the bulk write and rebuilt from their stored SQL at the
  // end of the same transaction: building an index once is several times faster than updating it
  // row by row, and what ends up on disk is the same schema.
  const indexes = sqlite
    .prepare(
      `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('run_ledger', 'tier_version')`,
    )
    .all() as Array<{ name: string; sql: string }>;
  const write = sqlite.transaction(() => {
    for (const index of indexes) sqlite.exec(`DROP INDEX "${index.name}"`);
    for (let run = 0; run < YEAR_RUNS; run++) {
      const runId = run + 1;
      const startedMs = START + run * SWEEP_MS + 200 + Math.floor(random() * 50);
      const startedAt = new Date(startedMs).toISOString();
      const observedAt = new Date(startedMs + 700).toISOString();
      const finishedAt = new Date(startedMs + 760).toISOString();
      if (run > 0 && random() < 0.001) {
        insertRun.run(
          runId,
          startedAt,
          null,
          finishedAt,
          'failed',
          3,
          null,
          null,
          'QFEX_TIMEOUT',
          'the exchange did not answer page 4 within 10000 ms',
        );
        liveCounts.push(live.size);
        continue;
      }
      const changes: Array<{ kind: 'added' | 'removed' | 'changed'; before: Tier | null; after: Tier | null }> = [];
      if (run === 0) {
        for (const sim of syntheticUniverse(YEAR_TIERS, 11)) {
          changes.push({ kind: 'added', before: null, after: toTier(sim) });
          symbols.add(sim.symbol);
        }
        nextSymbol = symbols.size;
      } else {
        const touched = new Set<string>();
        const edit = (key: string) => {
          if (touched.has(key)) return;
          touched.add(key);
          const before = live.get(key)!.tier;
          changes.push({
            kind: 'changed',
            before,
            after: { ...before, max_notional: Math.round(before.max_notional * (0.9 + random() * 0.2)) + 1 },
          });
        };
        for (let n = Math.floor(random() * 3); n > 0; n--) edit(liveKeys[Math.floor(random() * liveKeys.length)]!);
        if (random() < 1 / 12) {
          const symbol = live.get(liveKeys[Math.floor(random() * liveKeys.length)]!)!.tier.symbol;
          for (const key of ladderOf(symbol)) edit(key);
        }
        if (random() < 1 / WEEK_RUNS) {
          const symbol = `S${String(++nextSymbol).padStart(6, '0')}-USD`;
          for (const lev of [1, 2, 3, 4, 5, 10, 15, 20, 25, 30]) {
            changes.push({ kind: 'added', before: null, after: toTier(makeTier(symbol, lev, 250_000)) });
          }
        }
        if (random() < 1 / (WEEK_RUNS * 4)) {
          const victim = live.get(liveKeys[Math.floor(random() * liveKeys.length)]!)!.tier.symbol;
          if (victim !== QUERY_SYMBOL) {
            for (const key of ladderOf(victim)) {
              if (!touched.has(key)) changes.push({ kind: 'removed', before: live.get(key)!.tier, after: null });
            }
          }
        }
      }
      insertRun.run(runId, startedAt, null, null, 'running', 0, null, null, null, null);
      // As HistoryStore stores them: removed, then changed, then added.
      const order = { removed: 0, changed: 1, added: 2 } as const;
      changes.sort((a, b) => order[a.kind] - order[b.kind]);
      for (const change of changes) {
        const tier = (change.after ?? change.before)!;
        const key = keyOf(tier.symbol, tier.leverage);
        let previous: number | null = null;
        if (change.before !== null) {
          const entry = live.get(key)!;
          if (closeVersion.run(Date.parse(observedAt), entry.version_id).changes !== 1) {
            throw new Error(`year history: version ${entry.version_id} was not open`);
          }
          live.delete(key);
          if (change.after !== null) previous = entry.version_id;
        }
        if (change.after !== null) {
          live.set(key, { version_id: open(change.after, runId, observedAt, previous), tier: change.after });
        }
        changeRows += 1;
      }
      if (changes.some((change) => change.kind !== 'changed')) {
        liveKeys.length = 0;
        liveKeys.push(...live.keys());
      }
      finishRun.run(
        observedAt,
        finishedAt,
        Math.ceil(live.size / 999) + 1,
        live.size,
        changes.length,
        run === 0 ? 1 : 0,
        runId,
      );
      okRuns += 1;
      perRun.push({ observedAt, changes: changes.length });
      liveCounts.push(live.size);
      if (run === 0) firstState = snapshotState();
      if (run === YEAR_RUNS - 1 - WEEK_RUNS) {
        weekStartState = snapshotState();
        weekFrom = observedAt;
      }
    }
    for (const index of indexes) sqlite.exec(index.sql);
  });
  write();

  // The model's answers.
  const finalState = snapshotState();
  const differences = (from: Map<string, string>) => {
    let count = 0;
    for (const [key, values] of from) if (finalState.get(key) !== values) count += 1;
    for (const key of finalState.keys()) if (!from.has(key)) count += 1;
    return count;
  };
  if (weekStartState === null || firstState === null) {
    throw new Error('year history: the week-start run failed; pick another seed');
  }
  const firstObservedAt = perRun[0]!.observedAt;
  const lastObservedAt = perRun[perRun.length - 1]!.observedAt;
  const changesSince = new Date(Date.parse(lastObservedAt) - 7 * 86_400_000).toISOString();
  const changesSinceRows = perRun
    .filter((run) => run.observedAt >= changesSince)
    .reduce((sum, run) => sum + run.changes, 0);
  // Snapshot instants spread over the year (one minute after a sweep), and the live count then.
  const snapshotPoints = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 0.999].map((position) => {
    const run = Math.floor(position * (YEAR_RUNS - 1));
    return { at: new Date(START + run * SWEEP_MS + 60_000).toISOString(), tiers: liveCounts[run]! };
  });

  // Check the bulk writer against the real one: an unchanged sweep through HistoryStore on top of
  // this history must load the same current state and find nothing to store.
  const store = new HistoryStore(db, { logger: silentLogger() });
  const checkRun = store.startRun({
    accountId: 'primary',
    endpoint: 'wss://trade.qfex.com/',
    publicKey: null,
    startedAt: new Date(Date.parse(lastObservedAt) + 1000),
  });
  const outcome = store.commitSweep(checkRun, {
    accountId: 'primary',
    observedAt: new Date(Date.parse(lastObservedAt) + 2000),
    finishedAt: new Date(Date.parse(lastObservedAt) + 2100),
    tiers: [...live.values()].map((entry) => entry.tier),
    pages: 12,
    maxRemovalRatio: 0.5,
  });
  if (outcome.changes.length !== 0) {
    throw new Error(`year history: HistoryStore found ${outcome.changes.length} changes in the bulk-written state`);
  }
  // Undo the check run's ledger row so the history ends where the model does.
  sqlite.prepare('DELETE FROM run_ledger WHERE run_id = ?').run(checkRun);
  // Closed as the daemon closes it (PRAGMA optimize, WAL checkpoint); no extra ANALYZE.
  db.close();

  return {
    runs: YEAR_RUNS,
    okRuns,
    versions,
    changes: changeRows,
    build_s: round((nowMs() - began) / 1000),
    bytes: fs.statSync(dbPath).size,
    expectations: {
      firstObservedAt,
      lastObservedAt,
      snapshotPoints,
      weekFrom,
      weekDiffRows: differences(weekStartState),
      yearDiffRows: differences(firstState),
      changesSince,
      changesSinceRows,
      historyRows,
      queryLadder: 10,
    },
  };
}
