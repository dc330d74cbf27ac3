/**
 * The run ledger as the `runs` view shows it, and the gaps in it: failed, aborted and abandoned
 * runs, and "missed" runs where the time between two consecutive runs of an account is more than
 * twice the account's usual (median) spacing.
 */
import type { RunStatus } from '../store/schema.ts';
import { SQLITE, type SqlDialect } from './dialect.ts';
import { patternCondition } from './filters.ts';
import { cachedStatement, type HistoryReader } from './reader.ts';

/** A row of the `runs` view. */
export interface RunRow {
  run_id: number;
  account_id: string;
  endpoint: string;
  started_at: string;
  observed_at: string | null;
  finished_at: string | null;
  status: RunStatus;
  pages: number;
  tiers: number | null;
  changes: number | null;
  error_code: string | null;
  error_message: string | null;
  public_key: string | null;
  /** The leadership epoch of the Postgres collector that stored the run; null on SQLite. */
  leader_epoch: number | null;
}

export const RUN_COLUMNS = [
  'run_id',
  'account_id',
  'endpoint',
  'started_at',
  'observed_at',
  'finished_at',
  'status',
  'pages',
  'tiers',
  'changes',
  'error_code',
  'error_message',
  'public_key',
  'leader_epoch',
] as const;

export interface RunsQuery {
  /** Only runs that did not succeed (failed, aborted, abandoned). */
  failed?: boolean;
  /** Only the last N runs (after the other filters). */
  last?: number;
  accounts?: readonly string[];
}

/** The SQL of listRuns (newest first: the caller reverses) and its positional parameters. */
export function runsSql(query: RunsQuery, dialect: SqlDialect = SQLITE): { sql: string; params: string[] } {
  const accounts = patternCondition('account_id', query.accounts, dialect);
  const failed = query.failed ? `status IN ('failed', 'aborted', 'abandoned')` : dialect.always;
  const limit = query.last === undefined ? '' : `LIMIT ${Math.max(0, Math.floor(query.last))}`;
  const sql = `SELECT ${RUN_COLUMNS.join(', ')} FROM runs WHERE ${failed} AND ${accounts.sql} ORDER BY run_id DESC ${limit}`;
  return { sql, params: accounts.params };
}

/** The runs asked for, oldest first. */
export function listRuns(db: HistoryReader, query: RunsQuery = {}): RunRow[] {
  const { sql, params } = runsSql(query);
  return cachedStatement<RunRow>(db, sql)
    .all(...params)
    .reverse();
}

/** The runs of one account that would have happened in a gap, by run_id of the run after the gap. */
export function missedBefore(runs: readonly RunRow[]): Map<number, number> {
  const byAccount = new Map<string, RunRow[]>();
  for (const run of runs) {
    const list = byAccount.get(run.account_id) ?? [];
    list.push(run);
    byAccount.set(run.account_id, list);
  }
  const missed = new Map<number, number>();
  for (const list of byAccount.values()) {
    const spacings: number[] = [];
    for (let index = 1; index < list.length; index++) {
      spacings.push(Date.parse(list[index]!.started_at) - Date.parse(list[index - 1]!.started_at));
    }
    if (spacings.length < 2) continue; // one spacing is no "usual"
    const usual = median(spacings);
    if (usual <= 0) continue;
    spacings.forEach((spacing, index) => {
      if (spacing > 2 * usual) missed.set(list[index + 1]!.run_id, Math.round(spacing / usual) - 1);
    });
  }
  return missed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
