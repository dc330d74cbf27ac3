/**
 * `tierwatch query` on a Postgres history: readonly-query.ts's read-only statement under the
 * command's limits, with the SQLite path's contract (src/query/sql-process.ts: the same sink, the
 * same outcome, the same errors). Besides the server's statement_timeout, an overall deadline counts
 * from the start of the command to the last row handed over, and SIGINT/SIGTERM stop it at once:
 * either ends the session, which ends the statement.
 */
import type pg from 'pg';
import {
  queryAbortedError,
  queryTimeoutError,
  type QueryLimits,
  type QueryOutcome,
  type QuerySink,
} from '../../query/sql-process.ts';
import { readPgQuery } from './readonly-query.ts';

/** Rows handed to the sink at a time, as the SQLite child sends them. */
const BATCH_ROWS = 1000;

export async function runPgQuery(
  request: { url: string; sql: string; footer: boolean },
  limits: QueryLimits,
  sink: QuerySink,
): Promise<QueryOutcome> {
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(queryTimeoutError(limits)), limits.timeoutMs);
    onAbort = () => reject(queryAbortedError(limits.signal));
    limits.signal.addEventListener('abort', onAbort, { once: true });
    if (limits.signal.aborted) onAbort();
  });
  // Observed by the races below; this keeps a stop between two of them from being "unhandled".
  stopped.catch(() => {});
  const work = readPgQuery(request.url, request.sql, limits, {
    footer: request.footer,
    connected: (connected) => (client = connected),
  });
  work.catch(() => {});
  try {
    const result = await Promise.race([work, stopped]);
    await Promise.race([sink.started(result.columns, result.pid), stopped]);
    for (let start = 0; start < result.rows.length; start += BATCH_ROWS) {
      const open = await Promise.race([sink.rows(result.rows.slice(start, start + BATCH_ROWS)), stopped]);
      if (!open) return { lastObservedAt: null, complete: false };
    }
    return { lastObservedAt: result.lastObservedAt, complete: true };
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) limits.signal.removeEventListener('abort', onAbort);
    // Ends a statement still running (a deadline or a signal); a no-op once the read has ended it.
    await client?.end().catch(() => {});
  }
}
