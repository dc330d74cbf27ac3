/**
 * `tierwatch query` on a Postgres history: readonly-query.ts's read-only statement under the
 * command's limits, with the SQLite path's contract (src/query/sql-process.ts: the same sink, the
 * same outcome, the same errors). Besides the server's statement_timeout, an overall deadline counts
 * from the start of the command to the last row handed over, and SIGINT/SIGTERM stop it at once:
 * either ends the session, which ends the statement.
 */
import type pg from 'pg';
import { connectPg } from './connection.ts';
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
  let reading = true;
  const work = readPgQuery(request.url, request.sql, limits, {
    footer: request.footer,
    connected: (connected) => (client = connected),
  }).finally(() => (reading = false));
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
    // Stopped (a deadline or a signal) while the statement runs: a closed socket alone is noticed
    // by the server only at its next check, so the statement is cancelled, from a session of our own.
    if (reading && client !== undefined) await cancel(request.url, client);
    await client?.end().catch(() => {});
  }
}

/** Cancels what `client`'s session is running (a user may cancel its own sessions); never throws. */
async function cancel(url: string, client: pg.Client): Promise<void> {
  const pid = (client as pg.Client & { processID: number | null }).processID;
  if (pid === null) return;
  try {
    const canceller = await connectPg(url, {
      applicationName: 'tierwatch query (cancel)',
      connectionTimeoutMillis: 2000,
    });
    try {
      await canceller.query('SELECT pg_cancel_backend($1)', [pid]);
    } finally {
      await canceller.end().catch(() => {});
    }
  } catch {
    // The statement still ends at its statement_timeout, or when the server sees the socket closed.
  }
}
