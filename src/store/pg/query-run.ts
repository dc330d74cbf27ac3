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
  let started = false;
  // Set once the command has its answer (or its error): nothing more is written after it.
  let halted = false;
  const work = readPgQuery(request.url, request.sql, limits, {
    footer: request.footer,
    connected: (connected) => (client = connected),
    // Each batch is written before the next is fetched: a slow stdout pauses the cursor.
    onRows: async (columns, rows) => {
      if (halted) return false;
      if (!started) {
        started = true;
        await sink.started(columns, (client as pg.Client & { processID: number }).processID);
      }
      return rows.length === 0 || (await sink.rows(rows));
    },
  }).finally(() => (reading = false));
  work.catch(() => {});
  try {
    const result = await Promise.race([work, stopped]);
    return { lastObservedAt: result.lastObservedAt, complete: result.complete };
  } finally {
    halted = true;
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
