/**
 * The read side of the history, for the query commands and for in-process callers (the benchmark):
 * every function takes a better-sqlite3 connection or a StoreDb (open it read-only) and reads the
 * public views only.
 */
export { historyBounds, requireHistoryAt, type HistoryBounds } from './bounds.ts';
export { changesBetween, type ChangeRow, type TimeWindow } from './changes.ts';
export { diffBetween, type DiffRow } from './diff.ts';
export { toGlob, matchesPattern, type Filters } from './filters.ts';
export { symbolHistory } from './history.ts';
export { listRuns, missedBefore, type RunRow, type RunsQuery } from './runs.ts';
export { prepareReadOnly, splitStatements } from './readonly-sql.ts';
export { snapshotAt, snapshotRoute, snapshotSql, type VersionRow } from './snapshot.ts';
export { parseTimeArgument, resolveTime, TIME_FORMS, type TimeSpec } from './time.ts';
export type { HistoryReader } from './reader.ts';
export { SqliteHistorySource, type HistorySource } from './source.ts';
