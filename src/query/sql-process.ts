/**
 * Runs one `tierwatch query` statement in a child process (sql-child.ts) that this process can
 * always stop: on the timeout, on the shutdown signal, or when stdout's reader has gone. See
 * sql-child.ts for why a process and not a worker thread, and for the message protocol.
 *
 * Rows come back in batches; the next batch is asked for only once the sink has written the last
 * one, so a slow stdout pauses the statement instead of filling memory.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, TierwatchError, type ErrorCode } from '../errors.ts';
import type { ChildMessage, RunRequest } from './sql-child.ts';

/** How long `tierwatch query` lets a statement run when --timeout is not given. */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
export const DEFAULT_QUERY_TIMEOUT_TEXT = '30s';

/**
 * How long after its deadline the child kills itself if this process has not (this process was
 * itself killed, say): the backstop that keeps an orphaned statement from holding the WAL.
 */
const CHILD_GRACE_MS = 2_000;

/** This module's extension: `.ts` when run from the sources (tests), `.js` when built. */
const OWN_EXTENSION = path.extname(fileURLToPath(import.meta.url));

export function sqlChildModule(): string {
  return fileURLToPath(new URL(`./sql-child${OWN_EXTENSION}`, import.meta.url));
}

export interface QuerySink {
  /** The statement is compiled and running in process `pid`; its column names. */
  started(columns: string[], pid: number): void | Promise<void>;
  /** Writes a batch of raw rows; resolves false when the reader has gone (stop, quietly). */
  rows(batch: unknown[][]): Promise<boolean>;
}

export interface QueryLimits {
  timeoutMs: number;
  /** How the timeout is shown in its error message (`30s`). */
  timeoutText: string;
  /** Aborted on SIGINT/SIGTERM; its reason names the signal. */
  signal: AbortSignal;
}

/** What a completed query reports besides its rows. */
export interface QueryOutcome {
  /** observed_at of the last successful sweep, when asked for with `footer`. */
  lastObservedAt: string | null;
  /** False when the sink's reader went away before the last row. */
  complete: boolean;
}

/** The error of a statement stopped at its --timeout (either backend). */
export function queryTimeoutError(limits: { timeoutMs: number; timeoutText: string }): TierwatchError {
  return new TierwatchError(
    'QUERY_TIMEOUT',
    `The statement ran longer than --timeout ${limits.timeoutText} and was stopped. Narrow it (a WHERE clause, a LIMIT) or give a longer --timeout.`,
    { details: { timeoutMs: limits.timeoutMs } },
  );
}

/** The error of a statement stopped by SIGINT/SIGTERM (either backend); the signal's reason names it. */
export function queryAbortedError(signal: AbortSignal): TierwatchError {
  const name = typeof signal.reason === 'string' ? signal.reason : 'a shutdown signal';
  return new TierwatchError('ABORTED', `The query was stopped by ${name}.`, { details: { signal: signal.reason } });
}

/**
 * Runs `sql` read-only against `dbPath` and feeds its rows to `sink`. Throws TierwatchError:
 * USAGE (refused by the guard, invalid, or failing at run time), QUERY_TIMEOUT, ABORTED (the
 * signal; its message names it), what opening the database throws (DB_EMPTY, DB_NEEDS_MIGRATION,
 * …), INTERNAL when the child process dies without an answer. The child is dead when this returns.
 */
export function runReadOnlyQuery(
  request: { dbPath: string; sql: string; footer: boolean },
  limits: QueryLimits,
  sink: QuerySink,
): Promise<QueryOutcome> {
  const child = fork(sqlChildModule(), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // The statement needs no flags of this process (--test, --inspect, …).
    execArgv: [],
  });
  let stderrTail = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderrTail = (stderrTail + text).slice(-2000);
  });

  return new Promise<QueryOutcome>((resolve, reject) => {
    let settled = false;
    // Messages are handled one after another: a batch is written before the next is looked at.
    let chain: Promise<void> = Promise.resolve();

    const finish = (error: TierwatchError | null, outcome?: QueryOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      limits.signal.removeEventListener('abort', onAbort);
      stop(child);
      if (error !== null) reject(error);
      else resolve(outcome!);
    };
    const onAbort = (): void => finish(queryAbortedError(limits.signal));
    const timer = setTimeout(() => {
      finish(queryTimeoutError(limits));
    }, limits.timeoutMs);
    limits.signal.addEventListener('abort', onAbort, { once: true });
    if (limits.signal.aborted) onAbort();

    const then = (step: () => void | Promise<void>): void => {
      chain = chain
        .then(async () => {
          if (!settled) await step();
        })
        .catch((error: unknown) =>
          finish(
            error instanceof TierwatchError ? error : new TierwatchError('INTERNAL', String(error), { cause: error }),
          ),
        );
    };

    child.on('message', (message: ChildMessage) => {
      switch (message.type) {
        case 'started':
          then(() => sink.started(message.columns, child.pid!));
          break;
        case 'rows':
          then(async () => {
            if (!(await sink.rows(message.rows))) {
              finish(null, { lastObservedAt: null, complete: false });
            } else if (child.connected) {
              // The child may have sent its last batch and gone already: a failed send is no error,
              // what it sent is still to be read, and its exit is judged below.
              child.send({ type: 'more' }, () => undefined);
            }
          });
          break;
        case 'done':
          then(() => finish(null, { lastObservedAt: message.lastObservedAt, complete: true }));
          break;
        case 'error':
          then(() => finish(childError(message.code, message.message)));
          break;
      }
    });
    child.on('error', (error) =>
      finish(new TierwatchError('INTERNAL', `the query process failed: ${error.message}`, { cause: error })),
    );
    child.on('exit', (code, signal) => {
      // Its last messages may still be in the channel: judge only once the channel is closed too.
      const judge = (): void =>
        then(() =>
          finish(
            new TierwatchError(
              'INTERNAL',
              `the query process ended without an answer (${signal ?? `exit code ${code}`})${stderrTail.trim() ? `: ${stderrTail.trim()}` : ''}`,
            ),
          ),
        );
      if (child.connected) child.once('disconnect', judge);
      else judge();
    });

    const run: RunRequest = { type: 'run', ...request, deadlineMs: limits.timeoutMs + CHILD_GRACE_MS };
    child.send(run);
  });
}

function childError(code: string, message: string): TierwatchError {
  return code in ERROR_CODES
    ? new TierwatchError(code as ErrorCode, message)
    : new TierwatchError('INTERNAL', `${code}: ${message}`);
}

/** Kills the child at once, if it is still there: it holds nothing that needs a clean close. */
function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
