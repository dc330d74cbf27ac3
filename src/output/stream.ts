/**
 * Writing records to stdout as JSON, NDJSON, CSV or a table, row by row, in chunks, waiting for
 * 'drain' when the stream asks: a year of changes goes out without being built into one string
 * first, and nothing is lost when stdout is a slow pipe.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import { isAsyncRows, type Rows, type TableStream } from './table.ts';

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

/**
 * Writes `lines` (each without its newline) in chunks; stops quietly when the reader goes away.
 * Resolves false when it has gone.
 */
export async function writeLines(out: Writable, lines: Rows<string>): Promise<boolean> {
  const writer = new ChunkWriter(out);
  if (isAsyncRows(lines)) {
    for await (const line of lines) {
      await writer.add(`${line}\n`);
      if (!writer.open) break;
    }
  } else {
    for (const line of lines) {
      await writer.add(`${line}\n`);
      if (!writer.open) break;
    }
  }
  await writer.flush();
  return writer.open;
}

/**
 * How `tierwatch query` writes the rows it is handed in batches, whatever the format: begin, add
 * each row, flush after each batch (the next batch is asked for only then), end after the last.
 */
export interface RowWriter<Row> {
  /** False once the reader has gone: stop producing rows. */
  readonly open: boolean;
  begin(): Promise<void>;
  add(row: Row): Promise<void>;
  flush(): Promise<void>;
  end(): Promise<void>;
}

/** Writes a TableStream's lines as its rows are added: the table is never held whole. */
export class TableWriter<Row> implements RowWriter<Row> {
  readonly #writer: ChunkWriter;
  readonly #table: TableStream<Row>;
  constructor(out: Writable, table: TableStream<Row>) {
    this.#writer = new ChunkWriter(out);
    this.#table = table;
  }
  get open(): boolean {
    return this.#writer.open;
  }
  /** Nothing: the header waits for the sample rows that set the column widths. */
  async begin(): Promise<void> {}
  async add(row: Row): Promise<void> {
    await this.#lines(this.#table.push(row));
  }
  async flush(): Promise<void> {
    await this.#writer.flush();
  }
  /** The rows still held for the sample (or the empty text), then everything buffered. */
  async end(): Promise<void> {
    await this.#lines(this.#table.end());
    await this.#writer.flush();
  }
  async #lines(lines: readonly string[]): Promise<void> {
    for (const line of lines) await this.#writer.add(`${line}\n`);
  }
}

/**
 * Writes records one at a time in one of the machine formats: a JSON array (one object per line,
 * `[]` when empty), NDJSON (one object per line, nothing when empty) or CSV (a header, then one line
 * per row). For producers that hand rows over in batches (`tierwatch query`); writeRecords is the
 * loop over an iterable.
 */
export class RecordWriter<Row> implements RowWriter<Row> {
  readonly #writer: ChunkWriter;
  readonly #format: 'json' | 'ndjson' | 'csv';
  readonly #shape: RecordShape<Row>;
  #count = 0;
  constructor(out: Writable, format: 'json' | 'ndjson' | 'csv', shape: RecordShape<Row>) {
    this.#writer = new ChunkWriter(out);
    this.#format = format;
    this.#shape = shape;
  }
  /** False once the reader has gone: stop producing rows. */
  get open(): boolean {
    return this.#writer.open;
  }
  get count(): number {
    return this.#count;
  }
  /** The CSV header; nothing for JSON and NDJSON. */
  async begin(): Promise<void> {
    if (this.#format === 'csv') await this.#writer.add(stringify([this.#shape.csvColumns]));
  }
  async add(row: Row): Promise<void> {
    if (this.#format === 'csv') {
      await this.#writer.add(stringify([this.#shape.csv(row).map(csvValue)]));
    } else if (this.#format === 'ndjson') {
      await this.#writer.add(`${JSON.stringify(this.#shape.json(row))}\n`);
    } else {
      await this.#writer.add(`${this.#count === 0 ? '[\n' : ',\n'}${JSON.stringify(this.#shape.json(row))}`);
    }
    this.#count++;
  }
  /** Writes out what is buffered, waiting for 'drain' when the stream asks. */
  async flush(): Promise<void> {
    await this.#writer.flush();
  }
  /** Closes the JSON array and writes out everything. */
  async end(): Promise<void> {
    if (this.#format === 'json') await this.#writer.add(this.#count === 0 ? '[]\n' : '\n]\n');
    await this.#writer.flush();
  }
}

/**
 * Writes the rows with a RecordWriter. Stops early, without an error, when the reader goes away (a
 * `| head`); `break` closes the rows' iterator, which releases the statement.
 */
export async function writeRecords<Row>(
  out: Writable,
  format: 'json' | 'ndjson' | 'csv',
  rows: Rows<Row>,
  shape: RecordShape<Row>,
): Promise<number> {
  const writer = new RecordWriter(out, format, shape);
  await writer.begin();
  if (isAsyncRows(rows)) {
    for await (const row of rows) {
      if (!writer.open) break;
      await writer.add(row);
    }
  } else {
    for (const row of rows) {
      if (!writer.open) break;
      await writer.add(row);
    }
  }
  await writer.end();
  return writer.count;
}
