/**
 * Storage benchmark: what the history costs on disk, against the naive "insert the snapshot"
 * approach built in the same run.
 *
 * 200 sweeps of a 10,000-tier universe where 0.1% of the tiers (10) change per sweep, committed
 * through HistoryStore (the sweep's own writer), then 100 unchanged sweeps. Sizes are read after a
 * TRUNCATE checkpoint, so the WAL holds nothing and the file is the whole database.
 * The baseline stores every sweep as a full copy of every row, with the same columns and types as
 * tier_version (plus the run it belongs to) and no index at all: the smallest a full copy can be.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Tier } from '../src/history/tier.ts';
import { silentLogger } from '../src/log.ts';
import { openDatabase, type StoreDb } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { checkTarget, nowMs, round } from './stats.ts';
import { syntheticTiers } from './tiers.ts';

const TIERS = 10_000;
const SWEEPS = 200;
const CHANGED_PER_SWEEP = Math.ceil(TIERS * 0.001);
const UNCHANGED_SWEEPS = 100;
const SWEEP_INTERVAL_MS = 5 * 60_000;
const START = Date.parse('2025-01-01T00:00:00.000Z');

function fileBytes(file: string): number {
  let total = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    const candidate = `${file}${suffix}`;
    if (suffix !== '-shm' && fs.existsSync(candidate)) total += fs.statSync(candidate).size;
  }
  return total;
}

function checkpointedBytes(db: StoreDb | Database.Database, file: string): number {
  const sqlite = 'sqlite' in db ? db.sqlite : db;
  sqlite.pragma('wal_checkpoint(TRUNCATE)');
  return fileBytes(file);
}

/** Changes CHANGED_PER_SWEEP tiers in place (new objects: the store may hold the old ones). */
function mutate(tiers: Tier[], sweep: number): void {
  const stride = Math.floor(tiers.length / CHANGED_PER_SWEEP);
  for (let i = 0; i < CHANGED_PER_SWEEP; i++) {
    const index = (i * stride + sweep * 7) % tiers.length;
    const tier = tiers[index]!;
    tiers[index] = { ...tier, max_notional: tier.max_notional + 1000 };
  }
}

export async function benchStorage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-bench-storage-'));
  const logger = silentLogger();
  try {
    const historyPath = path.join(dir, 'history.db');
    const db = openDatabase(historyPath, { logger });
    const emptyBytes = checkpointedBytes(db, historyPath);
    const store = new HistoryStore(db, { logger });
    const tiers = syntheticTiers(TIERS);
    const sweepAt = (n: number) => new Date(START + n * SWEEP_INTERVAL_MS);
    const commit = (n: number) => {
      const runId = store.startRun({
        accountId: 'primary',
        endpoint: 'ws://127.0.0.1/',
        publicKey: 'bench',
        startedAt: sweepAt(n),
      });
      return store.commitSweep(runId, {
        accountId: 'primary',
        observedAt: new Date(sweepAt(n).getTime() + 900),
        finishedAt: new Date(sweepAt(n).getTime() + 950),
        tiers,
        pages: Math.ceil(TIERS / 999) + 1,
        maxRemovalRatio: 0.5,
      });
    };

    let began = nowMs();
    let changes = commit(0).changes.length;
    const afterFirst = checkpointedBytes(db, historyPath);
    for (let sweep = 1; sweep < SWEEPS; sweep++) {
      mutate(tiers, sweep);
      changes += commit(sweep).changes.length;
    }
    const historySeconds = (nowMs() - began) / 1000;
    const expectedChanges = TIERS + (SWEEPS - 1) * CHANGED_PER_SWEEP;
    if (changes !== expectedChanges) throw new Error(`storage: stored ${changes} changes, expected ${expectedChanges}`);
    const afterSweeps = checkpointedBytes(db, historyPath);

    for (let sweep = SWEEPS; sweep < SWEEPS + UNCHANGED_SWEEPS; sweep++) {
      if (commit(sweep).changes.length !== 0) throw new Error('storage: an unchanged sweep stored a change');
    }
    const afterUnchanged = checkpointedBytes(db, historyPath);
    const counts = db.sqlite
      .prepare(
        `SELECT (SELECT count(*) FROM tier_version) AS versions, (SELECT count(*) FROM tier_changes) AS changes,
                (SELECT count(*) FROM run_ledger) AS runs, (SELECT page_size FROM pragma_page_size) AS page_size`,
      )
      .get() as { versions: number; changes: number; runs: number; page_size: number };
    db.close();

    // ---- the naive baseline: every sweep a full copy of every row ----
    const naivePath = path.join(dir, 'naive.db');
    const naive = new Database(naivePath);
    // How fast the copy is written does not matter here, only its size: no journal, no fsync.
    naive.pragma('journal_mode = OFF');
    naive.pragma('synchronous = OFF');
    naive.exec(`CREATE TABLE tier_snapshot (
      run_id integer NOT NULL, account_id text NOT NULL, symbol text NOT NULL, leverage text NOT NULL,
      initial_margin real NOT NULL, maintenance_margin real NOT NULL, max_notional real NOT NULL,
      exchange_id text, observed_at text NOT NULL)`);
    const insert = naive.prepare('INSERT INTO tier_snapshot VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const naiveTiers = syntheticTiers(TIERS);
    began = nowMs();
    naive.transaction(() => {
      for (let sweep = 0; sweep < SWEEPS; sweep++) {
        if (sweep > 0) mutate(naiveTiers, sweep);
        const observed = new Date(sweepAt(sweep).getTime() + 900).toISOString();
        for (const tier of naiveTiers) {
          insert.run(
            sweep + 1,
            'primary',
            tier.symbol,
            tier.leverage,
            tier.initial_margin,
            tier.maintenance_margin,
            tier.max_notional,
            tier.exchange_id,
            observed,
          );
        }
      }
    })();
    const naiveSeconds = (nowMs() - began) / 1000;
    const naiveBytes = checkpointedBytes(naive, naivePath);
    const naiveRows = (naive.prepare('SELECT count(*) AS n FROM tier_snapshot').get() as { n: number }).n;
    if (naiveRows !== SWEEPS * TIERS) throw new Error(`storage: the naive copy holds ${naiveRows} rows`);
    naive.close();

    const perUnchanged = (afterUnchanged - afterSweeps) / UNCHANGED_SWEEPS;
    const naivePerSweep = naiveBytes / SWEEPS;
    // Both grow linearly after the first sweep: when does the history become 100× smaller?
    const growthPerChangedSweep = (afterSweeps - afterFirst) / (SWEEPS - 1);
    const denominator = naivePerSweep - 100 * growthPerChangedSweep;
    const sweepsFor100x =
      denominator > 0 ? Math.ceil((100 * (afterFirst - growthPerChangedSweep)) / denominator) : null;
    return {
      tiers: TIERS,
      sweeps: SWEEPS,
      changed_tiers_per_sweep: CHANGED_PER_SWEEP,
      unchanged_sweeps: UNCHANGED_SWEEPS,
      page_size_bytes: counts.page_size,
      empty_database_bytes: emptyBytes,
      history_bytes_after_first_sweep: afterFirst,
      history_bytes_after_200_sweeps: afterSweeps,
      history_bytes_per_changed_sweep: Math.round(growthPerChangedSweep),
      sweeps_until_100x_smaller: sweepsFor100x,
      history_bytes_after_100_more_unchanged: afterUnchanged,
      // tier_changes is a view derived from tier_version: counted, not stored.
      rows: { tier_version: counts.versions, tier_changes_derived: counts.changes, run_ledger: counts.runs },
      naive_full_copy_bytes: naiveBytes,
      naive_rows: naiveRows,
      naive_bytes_per_sweep: Math.round(naivePerSweep),
      history_build_s: round(historySeconds),
      naive_build_s: round(naiveSeconds),
      bytes_per_unchanged_sweep: round(perUnchanged, 1),
      first_sweep_full_copies: round(afterFirst / naivePerSweep, 2),
      targets: {
        first_sweep_bytes: checkTarget({
          target: 'the first sweep costs ≤ 1.5 full copies of the tier list',
          value: afterFirst,
          unit: 'bytes',
          baseline: naivePerSweep,
          baselineName: 'full copy: bytes per sweep',
          ratioLimit: { max: 1.5 },
        }),
        unchanged_sweep_bytes: checkTarget({
          target: 'an unchanged sweep adds ≤ 1 KB on average',
          value: perUnchanged,
          unit: 'bytes',
          baseline: naivePerSweep,
          baselineName: 'full copy: bytes per sweep',
          limit: 1024,
          ratioIsBaselineOverValue: true,
        }),
        size_vs_full_copy: checkTarget({
          target: 'storage ≥ 100× smaller than the full copy after 200 sweeps',
          value: afterSweeps,
          unit: 'bytes',
          baseline: naiveBytes,
          baselineName: 'full copy after 200 sweeps',
          ratioLimit: { min: 100 },
          ratioIsBaselineOverValue: true,
        }),
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
