/**
 * The SQL of the history writer (history-store.ts), prepared once per store: the run ledger
 * (start, finish, abandon, last success), the type-2 versions (load the current ones, close, open),
 * the endpoint binding in `meta`, and PRAGMA data_version, which tells whether another connection
 * has committed since the store last looked.
 */
import type Database from 'better-sqlite3';
import type { CurrentVersion } from '../history/current-tiers.ts';

export interface HistoryStatements {
  dataVersion: Database.Statement<[], number>;
  loadCurrent: Database.Statement<[string], CurrentVersion>;
  lastObserved: Database.Statement<[string], { observed_at: string | null }>;
  recentTierCounts: Database.Statement<[string, string], number>;
  runHeader: Database.Statement<[number], { account_id: string; status: string }>;
  closeVersion: Database.Statement<[number, number]>;
  openVersion: Database.Statement<
    [string, string, string, number, number, number, string | null, number, number, number | null]
  >;
  finishOk: Database.Statement<[string, string, number, number, number, number, number]>;
  finishFailed: Database.Statement<[string, string, string, number, string, string | null, number]>;
  startRun: Database.Statement<[string, string, string | null, string]>;
  abandon: Database.Statement<[string, string]>;
  getMeta: Database.Statement<[string], { value: string }>;
  putMeta: Database.Statement<[string, string]>;
  lastOk: Database.Statement<[], { run_id: number; observed_at: string }>;
  lastOkForAccount: Database.Statement<[string], { run_id: number; observed_at: string }>;
}

/** Prepares every statement of HistoryStatements on `sqlite` (a writable connection). */
export function prepareHistoryStatements(sqlite: Database.Database): HistoryStatements {
  return {
    dataVersion: sqlite.prepare<[], number>('PRAGMA data_version').pluck(),
    loadCurrent: sqlite.prepare(
      `SELECT version_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id
         FROM tier_version WHERE valid_to IS NULL AND account_id = ?`,
    ),
    lastObserved: sqlite.prepare(
      `SELECT max(observed_at) AS observed_at FROM run_ledger WHERE status = 'ok' AND account_id = ?`,
    ),
    recentTierCounts: sqlite
      .prepare<[string, string], number>(
        `SELECT coalesce(tiers, 0) FROM run_ledger WHERE status = 'ok' AND account_id = ? AND observed_at >= ?
          ORDER BY observed_at, run_id`,
      )
      .pluck(),
    runHeader: sqlite.prepare('SELECT account_id, status FROM run_ledger WHERE run_id = ?'),
    closeVersion: sqlite.prepare('UPDATE tier_version SET valid_to = ? WHERE version_id = ? AND valid_to IS NULL'),
    openVersion: sqlite.prepare(
      `INSERT INTO tier_version (account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional,
                                 exchange_id, valid_from, run_id, prev_version_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    finishOk: sqlite.prepare(
      `UPDATE run_ledger SET status = 'ok', observed_at = ?, finished_at = ?, pages = ?, tiers = ?, changes = ?, baseline = ?
        WHERE run_id = ? AND status = 'running'`,
    ),
    finishFailed: sqlite.prepare(
      `UPDATE run_ledger SET status = ?, error_code = ?, error_message = ?, pages = ?, finished_at = ?, observed_at = ?
        WHERE run_id = ? AND status = 'running'`,
    ),
    startRun: sqlite.prepare(
      `INSERT INTO run_ledger (account_id, endpoint, public_key, started_at, status) VALUES (?, ?, ?, ?, 'running')`,
    ),
    abandon: sqlite.prepare(
      `UPDATE run_ledger SET status = 'abandoned', finished_at = ?, error_message = ? WHERE status = 'running'`,
    ),
    getMeta: sqlite.prepare('SELECT value FROM meta WHERE key = ?'),
    putMeta: sqlite.prepare('INSERT INTO meta (key, value) VALUES (?, ?)'),
    lastOk: sqlite.prepare(
      `SELECT run_id, observed_at FROM run_ledger WHERE status = 'ok' ORDER BY observed_at DESC, run_id DESC LIMIT 1`,
    ),
    lastOkForAccount: sqlite.prepare(
      `SELECT run_id, observed_at FROM run_ledger WHERE status = 'ok' AND account_id = ?
        ORDER BY observed_at DESC, run_id DESC LIMIT 1`,
    ),
  };
}
