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

/** Writes `text`, waiting for 'drain' when the stream's buffer is full. */
export async function writeText(out: Writable, text: string): Promise<void> {
  if (text === '') return;
  if (!out.write(text)) await once(out, 'drain');
}

/** Collects text into chunks of about 64 KiB before writing them. */
class ChunkWriter {
  #buffer = '';
  readonly #out: Writable;
  constructor(out: Writable) {
    this.#out = out;
  }
  async add(text: string): Promise<void> {
    this.#buffer += text;
    if (this.#buffer.length >= CHUNK_CHARS) await this.flush();
  }
  async flush(): Promise<void> {
    const text = this.#buffer;
    this.#buffer = '';
    await writeText(this.#out, text);
  }
}

/** A value as JSON can carry it: blobs as hex strings, bigints as numbers when exact, else strings. */
export function jsonValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  return value;
}

/** A value as one CSV cell: empty for null, JSON for arrays and objects. */
function csvValue(value: unknown): unknown {
  if (value === null || value === undefined) return '';
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (typeof value === 'object') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
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
      await writer.add(stringify([shape.csv(row).map(csvValue)]));
      count++;
    }
  } else if (format === 'ndjson') {
    for (const row of rows) {
      await writer.add(`${JSON.stringify(shape.json(row))}\n`);
      count++;
    }
  } else {
    for (const row of rows) {
      await writer.add(`${count === 0 ? '[\n' : ',\n'}${JSON.stringify(shape.json(row))}`);
      count++;
    }
    await writer.add(count === 0 ? '[]\n' : '\n]\n');
  }
  await writer.flush();
  return count;
}
