/**
 * Writing records to stdout as JSON, NDJSON or CSV, row by row, in chunks, waiting for 'drain' when
 * the stream asks: a year of changes goes out without being built into one string first, and
 * nothing is lost when stdout is a slow pipe.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';

/** How one kind of record is written as JSON (the output contract) and as a CSV row. */
export interface RecordShape<Row> {
  json(row: Row): unknown;
  csvColumns: readonly string[];
  csv(row: Row): unknown[];
}

const CHUNK_CHARS = 64 * 1024;

/** The reader went away (`tierwatch changes | head`): not an error, just the end of the output. */
function isBrokenPipe(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'EPIPE';
}

/**
 * Writes `text`, waiting for 'drain' when the stream's buffer is full. Returns false when the
 * reader has gone (EPIPE, or the stream was destroyed): the caller should stop writing, quietly.
 */
export async function writeText(out: Writable, text: string): Promise<boolean> {
  if (text === '') return true;
  if (out.destroyed) return false;
  // An EPIPE can arrive as an 'error' event after write() returned; without a listener it would
  // crash the process. Listen for the duration of this write.
  let gone = false;
  const onError = (error: unknown): void => {
    if (isBrokenPipe(error)) gone = true;
  };
  out.on('error', onError);
  try {
    if (!out.write(text)) await once(out, 'drain');
  } catch (error) {
    if (!isBrokenPipe(error)) throw error;
    gone = true;
  } finally {
    out.off('error', onError);
  }
  return !gone && !out.destroyed;
}

/** Collects text into chunks of about 64 KiB before writing them. */
class ChunkWriter {
  #buffer = '';
  #open = true;
  readonly #out: Writable;
  constructor(out: Writable) {
    this.#out = out;
  }
  /** False once the reader has gone: stop producing rows. */
  get open(): boolean {
    return this.#open;
  }
  async add(text: string): Promise<void> {
    this.#buffer += text;
    if (this.#buffer.length >= CHUNK_CHARS) await this.flush();
  }
  async flush(): Promise<void> {
    const text = this.#buffer;
    this.#buffer = '';
    if (this.#open) this.#open = await writeText(this.#out, text);
  }
}

/** A value as JSON can carry it: blobs as hex strings, bigints as numbers when exact, else strings. */
export function jsonValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  return value;
}

/**
 * A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(…)`,
 * `@SUM(…)`), and some also after a leading tab or CR. Such a text cell gets a leading `'` (the
 * OWASP "CSV injection" rule), which spreadsheets show as text. Numbers are never touched: they are
 * written as numbers, so a negative value stays `-0.5`; only text is neutralised.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** A value as one CSV cell: empty for null, JSON for arrays and objects, formula-like text neutralised. */
function csvValue(value: unknown): unknown {
  if (value === null || value === undefined) return '';
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (typeof value === 'object') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return neutraliseFormula(value);
  return value;
}

/** Writes `lines` (each without its newline) in chunks; stops quietly when the reader goes away. */
export async function writeLines(out: Writable, lines: Iterable<string>): Promise<void> {
  const writer = new ChunkWriter(out);
  for (const line of lines) {
    await writer.add(`${line}\n`);
    if (!writer.open) break;
  }
  await writer.flush();
}

/**
 * Stops early, without an error, when the reader goes away (a `| head`); `break` closes the rows'
 * iterator, which releases the statement.
 *
 * Writes the rows in one of the machine formats: a JSON array (one object per line, `[]` when
 * empty), NDJSON (one object per line, nothing when empty) or CSV (a header, then one line per row).
 */
export async function writeRecords<Row>(
  out: Writable,
  format: 'json' | 'ndjson' | 'csv',
  rows: Iterable<Row>,
  shape: RecordShape<Row>,
): Promise<number> {
  const writer = new ChunkWriter(out);
  let count = 0;
  if (format === 'csv') {
    await writer.add(stringify([shape.csvColumns as string[]]));
    for (const row of rows) {
      if (!writer.open) break;
      await writer.add(stringify([shape.csv(row).map(csvValue)]));
      count++;
    }
  } else if (format === 'ndjson') {
    for (const row of rows) {
      if (!writer.open) break;
      await writer.add(`${JSON.stringify(shape.json(row))}\n`);
      count++;
    }
  } else {
    for (const row of rows) {
      if (!writer.open) break;
      await writer.add(`${count === 0 ? '[\n' : ',\n'}${JSON.stringify(shape.json(row))}`);
      count++;
    }
    await writer.add(count === 0 ? '[]\n' : '\n]\n');
  }
  await writer.flush();
  return count;
}
