/**
 * The process `tierwatch query` runs its statement in (forked by sql-process.ts).
 *
 * Why a process and not a worker thread: a statement that never returns a row (a runaway recursive
 * CTE under count(*), a huge cross join) stays inside sqlite3_step, native code that neither
 * `worker.terminate()` nor `process.exit()` can interrupt (both wait for the thread to come back to
 * JavaScript; better-sqlite3 exposes no sqlite3_interrupt). A process can always be killed, and the
 * kernel then releases its read lock on the WAL at once, so the daemon's next checkpoint succeeds.
 *
 * Protocol over the IPC channel (advanced serialization, so blobs stay binary):
 *   parent → child  {type:'run', dbPath, sql, footer}   once, first
 *                   {type:'more'}                        after each batch it has written out
 *   child → parent  {type:'started', columns}            the statement is compiled and about to step
 *                   {type:'rows', rows}                  a batch of raw rows (arrays)
 *                   {type:'done', lastObservedAt}        every row was sent (lastObservedAt if footer)
 *                   {type:'error', code, message}        a TierwatchError code and its message
 * A watchdog thread kills this process at `deadlineMs`, or as soon as the parent is gone: the
 * parent kills it first in the normal course, but a parent killed with SIGKILL cannot, and an
 * orphaned runaway statement would hold the WAL's read lock for ever.
 *
 * At most BATCH_WINDOW batches are unacknowledged, so memory stays bounded however slowly stdout
 * drains: the statement waits, paused between rows, until the parent asks for more.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { openDatabase, type StoreDb } from '../store/db.ts';
import { historyBounds } from './bounds.ts';
import { prepareReadOnly, toQueryError } from './readonly-sql.ts';

export interface RunRequest {
  type: 'run';
  dbPath: string;
  sql: string;
  /** Also send the last successful sweep's observed_at (the table footer). */
  footer: boolean;
  /** When this process kills itself if the parent has not killed it yet (ms from now). */
  deadlineMs: number;
}

export type ChildMessage =
  | { type: 'started'; columns: string[] }
  | { type: 'rows'; rows: unknown[][] }
  | { type: 'done'; lastObservedAt: string | null }
  | { type: 'error'; code: string; message: string };

/** A batch ends at this many rows, or at about this many characters of values, whichever comes first. */
const BATCH_ROWS = 1000;
const BATCH_CHARS = 256 * 1024;
/** Batches sent and not yet acknowledged by the parent. */
const BATCH_WINDOW = 2;

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, undefined, {}, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

/** A rough size of one row, to keep a batch of wide rows (long strings, blobs) small. */
function rowChars(row: unknown[]): number {
  let chars = row.length * 8;
  for (const value of row) {
    if (typeof value === 'string') chars += value.length;
    else if (value instanceof Uint8Array) chars += value.byteLength * 2;
  }
  return chars;
}

let credits = BATCH_WINDOW;
let wakeUp: (() => void) | null = null;

process.on('message', (message: { type?: unknown }) => {
  if (message?.type !== 'more') return;
  credits += 1;
  wakeUp?.();
});

async function sendBatch(rows: unknown[][]): Promise<void> {
  while (credits === 0) await new Promise<void>((resolve) => (wakeUp = resolve));
  wakeUp = null;
  credits -= 1;
  await send({ type: 'rows', rows });
}

/**
 * The watchdog runs on its own thread, so its timers fire while this thread is inside sqlite3_step.
 * SIGKILL because nothing here needs cleaning up: the connection only reads.
 */
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const die = () => process.kill(process.pid, 'SIGKILL');
setTimeout(die, workerData.deadlineMs);
setInterval(() => { if (process.ppid !== workerData.parentPid) die(); }, 250);
`;

/**
 * Starts the watchdog without waiting for it: a thread boots on its own, whatever this thread is
 * doing, and waiting would add its start-up time (tens of ms) to every query.
 */
function startWatchdog(deadlineMs: number): void {
  const watchdog = new Worker(WATCHDOG, { eval: true, workerData: { deadlineMs, parentPid: process.ppid } });
  // It must not keep this process alive once the statement is done.
  watchdog.unref();
  // A watchdog that cannot start leaves the parent's own kill, which is the normal way anyway.
  watchdog.on('error', () => undefined);
}

async function run(request: RunRequest): Promise<void> {
  let db: StoreDb | undefined;
  try {
    db = openDatabase(request.dbPath, { readonly: true });
    // Belt and braces beside the read-only open and the guard: this connection refuses any write.
    db.sqlite.pragma('query_only = 1');
    const statement = prepareReadOnly(db.sqlite, request.sql).raw(true);
    await send({ type: 'started', columns: statement.columns().map((column) => column.name) });
    let batch: unknown[][] = [];
    let chars = 0;
    for (const row of statement.iterate() as IterableIterator<unknown[]>) {
      batch.push(row);
      chars += rowChars(row);
      if (batch.length >= BATCH_ROWS || chars >= BATCH_CHARS) {
        await sendBatch(batch);
        batch = [];
        chars = 0;
      }
    }
    if (batch.length > 0) await sendBatch(batch);
    const lastObservedAt = request.footer ? (historyBounds(db)?.last_observed_at ?? null) : null;
    await send({ type: 'done', lastObservedAt });
  } catch (thrown) {
    const error = toQueryError(thrown);
    if (process.connected) await send({ type: 'error', code: error.code, message: error.message });
  } finally {
    db?.close();
    if (process.connected) process.disconnect();
  }
}

const [request] = (await once(process, 'message')) as [RunRequest];
startWatchdog(request.deadlineMs);
await run(request);
