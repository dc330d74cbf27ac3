/**
 * Terminal tables and the line every table ends with: the time of the last successful sweep, so a
 * stale history is never mistaken for a current one.
 *
 * Tables are rendered line by line in time linear in the rows: column widths come from the header
 * and the first SAMPLE_ROWS rows, and later rows are laid out in those widths, so a year of
 * changes starts printing at once and never has to be held in memory. When the terminal's width is
 * known the columns are narrowed (widest first) until the table fits, and a cell wider than its
 * column wraps onto continuation lines (up to MAX_CELL_LINES, then elided with `…`). Every cell is
 * passed through escapeControl: a symbol carrying an escape sequence is shown, not obeyed.
 */
import { escapeControl } from './terminal-text.ts';

export type Align = 'left' | 'right';

export interface TableColumn {
  title: string;
  align?: Align;
}

/** A table not yet rendered: its rows may be a lazy iterable (a statement being read). */
export interface Table {
  columns: readonly TableColumn[];
  rows: Iterable<readonly string[]>;
  /** Printed alone when there are no rows. */
  empty: string;
}

export interface TableLayoutOptions {
  /** The terminal's width in columns; undefined when unknown (not a terminal): nothing is narrowed. */
  width?: number | undefined;
  /** How many leading rows set the column widths (default SAMPLE_ROWS). */
  sampleRows?: number;
}

export const SAMPLE_ROWS = 1000;
const GAP = '  ';
/** Columns are not narrowed below this (a wrapped cell of 1–2 characters helps no one). */
const MIN_COLUMN_WIDTH = 6;
const MAX_CELL_LINES = 4;
const SURROGATE = /[\ud800-\udfff]/;

/** Width in terminal cells, counting code points (wide CJK characters are counted as one). */
function displayWidth(text: string): number {
  return SURROGATE.test(text) ? [...text].length : text.length;
}

/** A table of `rows` under `columns`; `rows` is read once, lazily. */
export function table(columns: readonly TableColumn[], rows: Iterable<readonly string[]>, empty: string): Table;
export function table(
  columns: readonly TableColumn[],
  rows: Rows<readonly string[]>,
  empty: string,
): Table | AsyncTable;
export function table(
  columns: readonly TableColumn[],
  rows: Rows<readonly string[]>,
  empty: string,
): Table | AsyncTable {
  return isAsyncRows(rows) ? { columns, rows, empty } : { columns, rows, empty };
}

/**
 * Rows read once, lazily: a statement's iterator (SQLite) or a cursor read in batches (Postgres).
 * Code that may get either keeps the synchronous path for the first, where each row costs nothing.
 */
export type Rows<Row> = Iterable<Row> | AsyncIterable<Row>;

export function isAsyncRows<Row>(rows: Rows<Row>): rows is AsyncIterable<Row> {
  return Symbol.asyncIterator in rows;
}

/** A table whose rows arrive asynchronously (a Postgres cursor). */
export interface AsyncTable extends Omit<Table, 'rows'> {
  rows: AsyncIterable<readonly string[]>;
}

/** Maps rows lazily (a generator), so a statement's iterator is never turned into an array. */
export function mapRows<Row>(
  rows: Iterable<Row>,
  cells: (row: Row, index: number) => readonly string[],
): Iterable<readonly string[]>;
export function mapRows<Row>(
  rows: Rows<Row>,
  cells: (row: Row, index: number) => readonly string[],
): Rows<readonly string[]>;
export function mapRows<Row>(
  rows: Rows<Row>,
  cells: (row: Row, index: number) => readonly string[],
): Rows<readonly string[]> {
  let index = 0;
  if (isAsyncRows(rows)) {
    return (async function* () {
      for await (const row of rows) yield cells(row, index++);
    })();
  }
  return (function* () {
    for (const row of rows) yield cells(row, index++);
  })();
}

/** Where a cell may break: at a space, after `_`, `,` or `-`, and before the `T` of an ISO instant. */
const BREAKS = / |(?<=[_,-])|(?<=\d)(?=T\d)/;

function breaksBefore(chars: readonly string[], j: number): 'space' | 'here' | null {
  if (chars[j] === ' ') return 'space';
  const previous = chars[j - 1]!;
  if (previous === '_' || previous === ',' || previous === '-') return 'here';
  if (chars[j] === 'T' && /\d/.test(previous) && /\d/.test(chars[j + 1] ?? '')) return 'here';
  return null;
}

/** The longest piece of `text` that has no break in it: narrower than that, a word is cut. */
function longestWord(text: string): number {
  let longest = 0;
  for (const word of text.split(BREAKS)) longest = Math.max(longest, displayWidth(word));
  return longest;
}

export interface ColumnLayout {
  widths: number[];
  gap: string;
}

/**
 * Fits the columns into `width`: first the widest columns give up what their longest word does
 * not need (so a description wraps between words and an instant at its `T`), then, only if that
 * is not enough, the columns are cut below their words, widest first, down to MIN_COLUMN_WIDTH.
 * The gap between columns drops from two spaces to one when the table does not fit otherwise.
 * Linear in the excess, which is bounded by the sum of the natural widths.
 */
export function fitColumns(
  natural: readonly number[],
  words: readonly number[],
  width: number | undefined,
): ColumnLayout {
  const widths = [...natural];
  if (width === undefined) return { widths, gap: GAP };
  const total = (gap: number): number => widths.reduce((sum, w) => sum + w, 0) + gap * (widths.length - 1);
  const narrowest = natural.map((w, i) => Math.min(w, Math.max(MIN_COLUMN_WIDTH, words[i]!)));
  const gap =
    natural.reduce((sum, w) => sum + w, 0) + GAP.length * (widths.length - 1) <= width ||
    narrowest.reduce((sum, w) => sum + w, 0) + GAP.length * (widths.length - 1) <= width
      ? GAP.length
      : 1;
  for (const floor of [narrowest, natural.map((w) => Math.min(w, MIN_COLUMN_WIDTH))]) {
    let excess = total(gap) - width;
    while (excess > 0) {
      let widest = -1;
      for (let i = 0; i < widths.length; i += 1) {
        if (widths[i]! > floor[i]! && (widest === -1 || widths[i]! - floor[i]! >= widths[widest]! - floor[widest]!)) {
          widest = i;
        }
      }
      if (widest === -1) break;
      widths[widest]! -= 1;
      excess -= 1;
    }
  }
  return { widths, gap: ' '.repeat(gap) };
}

/**
 * A narrowed column often needs less than it was given once its cells are wrapped at their breaks
 * (an instant wraps at its `T` to 14 cells whatever its column's width): it keeps only what the
 * sample needs, and the cells saved go to the narrowed columns to its right, the last first.
 */
function reclaim(layout: ColumnLayout, natural: readonly number[], cells: ReadonlyArray<readonly string[]>): void {
  const { widths } = layout;
  let saved = 0;
  for (let i = 0; i < widths.length; i += 1) {
    if (widths[i]! >= natural[i]!) continue;
    let used = 1;
    for (const row of cells) {
      for (const line of wrap(row[i] ?? '', widths[i]!)) used = Math.max(used, displayWidth(line));
    }
    saved += widths[i]! - used;
    widths[i] = used;
  }
  for (let i = widths.length - 1; i >= 0 && saved > 0; i -= 1) {
    const room = Math.min(saved, natural[i]! - widths[i]!);
    if (room <= 0) continue;
    widths[i]! += room;
    saved -= room;
  }
}

/** Splits `text` into lines of at most `width` cells, at the breaks of BREAKS when one is near. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let chars = [...text];
  while (chars.length > width) {
    if (lines.length === MAX_CELL_LINES - 1) {
      lines.push(`${chars.slice(0, width - 1).join('')}…`);
      return lines;
    }
    let cut = 0;
    for (let j = Math.min(width, chars.length - 1); j > 0 && cut === 0; j -= 1) {
      if (breaksBefore(chars, j) !== null) cut = j;
    }
    if (cut < width / 3) cut = width;
    lines.push(chars.slice(0, cut).join('').trimEnd());
    chars = chars.slice(cut);
    while (chars[0] === ' ') chars.shift();
  }
  lines.push(chars.join(''));
  return lines;
}

function pad(text: string, width: number, align: Align): string {
  const gap = width - displayWidth(text);
  if (gap <= 0) return text;
  return align === 'right' ? ' '.repeat(gap) + text : text + ' '.repeat(gap);
}

/** One row (or the header) as one or more lines of text. */
function layoutRow(
  cells: readonly string[],
  { widths, gap }: ColumnLayout,
  aligns: readonly Align[],
  wrapCells: boolean,
): string[] {
  const parts = cells.map((cell, i) => {
    const text = escapeControl(cell);
    return wrapCells && displayWidth(text) > widths[i]! ? wrap(text, widths[i]!) : [text];
  });
  const height = Math.max(...parts.map((part) => part.length));
  const lines: string[] = [];
  for (let line = 0; line < height; line += 1) {
    lines.push(
      parts
        .map((part, i) => pad(part[line] ?? '', widths[i]!, aligns[i]!))
        .join(gap)
        .trimEnd(),
    );
  }
  return lines;
}

/** The columns of a table, or how to choose them from the sample rows (a query's numeric columns). */
export type ColumnsFrom<Row> = readonly TableColumn[] | ((sample: readonly Row[]) => readonly TableColumn[]);

/**
 * A table laid out as its rows arrive. The first `sampleRows` rows are held back to set the column
 * widths (and, through `columns`, their alignment); from then on every row pushed comes back at
 * once as its lines. For producers that push rows in batches (`tierwatch query`, whose rows come
 * from a child process); tableLines is the same over an iterable.
 */
export class TableStream<Row> {
  readonly #columns: ColumnsFrom<Row>;
  readonly #cells: (row: Row) => readonly string[];
  readonly #empty: string;
  readonly #options: TableLayoutOptions;
  /** The rows held back until the layout is known; null once it is. */
  #sample: Row[] | null = [];
  #layout: ColumnLayout | null = null;
  #aligns: readonly Align[] = [];
  #rows = 0;

  constructor(
    columns: ColumnsFrom<Row>,
    cells: (row: Row) => readonly string[],
    empty: string,
    options: TableLayoutOptions = {},
  ) {
    this.#columns = columns;
    this.#cells = cells;
    this.#empty = empty;
    this.#options = options;
  }

  /** How many rows were pushed. */
  get rows(): number {
    return this.#rows;
  }

  /** The lines (without newlines) that `row` completes: none while the sample fills. */
  push(row: Row): string[] {
    this.#rows += 1;
    if (this.#sample === null) return this.#layoutRow(this.#cells(row));
    this.#sample.push(row);
    return this.#sample.length >= (this.#options.sampleRows ?? SAMPLE_ROWS) ? this.#release() : [];
  }

  /** The lines still held back: the whole table when it had fewer rows than the sample, or `empty`. */
  end(): string[] {
    if (this.#rows === 0) return [this.#empty];
    return this.#sample === null ? [] : this.#release();
  }

  /** Sets the layout from the sample, and returns the header, the rule and the sample's rows. */
  #release(): string[] {
    const sample = this.#sample ?? [];
    this.#sample = null;
    const columns = typeof this.#columns === 'function' ? this.#columns(sample) : this.#columns;
    const cells = sample.map(this.#cells);
    const { width } = this.#options;
    const titles = columns.map((column) => column.title);
    this.#aligns = columns.map((column) => column.align ?? 'left');
    // At least one cell wide: a column of empty strings must still be able to wrap a later cell.
    const natural = titles.map((title) => Math.max(1, displayWidth(escapeControl(title))));
    // Titles may be cut anywhere (they are known words); only the cells' words set a floor.
    const words = titles.map(() => 0);
    for (const row of cells) {
      for (let i = 0; i < natural.length; i += 1) {
        const text = escapeControl(row[i] ?? '');
        natural[i] = Math.max(natural[i]!, displayWidth(text));
        if (width !== undefined) words[i] = Math.max(words[i]!, longestWord(text));
      }
    }
    const layout = fitColumns(natural, words, width);
    if (width !== undefined) {
      reclaim(
        layout,
        natural,
        [titles, ...cells].map((row) => row.map((cell) => escapeControl(cell ?? ''))),
      );
    }
    this.#layout = layout;
    const lines = layoutRow(
      titles,
      layout,
      titles.map(() => 'left' as const),
      width !== undefined,
    );
    lines.push(layout.widths.map((w) => '─'.repeat(w)).join(layout.gap));
    for (const row of cells) lines.push(...this.#layoutRow(row));
    return lines;
  }

  #layoutRow(cells: readonly string[]): string[] {
    // Without a known width nothing is cut: a later, wider cell only pushes its row out of line.
    return layoutRow(cells, this.#layout!, this.#aligns, this.#options.width !== undefined);
  }
}

/**
 * The table's lines (without newlines), produced as the rows are read: the header, a rule, one or
 * more lines per row; or just the `empty` text. Stopping early (the reader went away) closes the
 * rows' iterator, which releases a statement being iterated.
 */
export function* tableLines(source: Table, options: TableLayoutOptions = {}): Generator<string> {
  const stream = new TableStream(source.columns, (row: readonly string[]) => row, source.empty, options);
  for (const row of source.rows) yield* stream.push(row);
  yield* stream.end();
}

/** tableLines over rows that arrive asynchronously. */
export async function* asyncTableLines(source: AsyncTable, options: TableLayoutOptions = {}): AsyncGenerator<string> {
  const stream = new TableStream(source.columns, (row: readonly string[]) => row, source.empty, options);
  for await (const row of source.rows) yield* stream.push(row);
  yield* stream.end();
}

/** The table as text (ending with a newline), or `empty` on its own line when there are no rows. */
export function renderTable(
  columns: readonly TableColumn[],
  rows: Iterable<readonly string[]>,
  empty: string,
  options: TableLayoutOptions = {},
): string {
  let text = '';
  for (const line of tableLines(table(columns, rows, empty), options)) text += `${line}\n`;
  return text;
}

/** "3m", "2h 5m", "4d 1h": how long ago, coarse on purpose. */
export function formatAge(ms: number): string {
  if (ms < 0) return 'in the future';
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** The closing line of every table. */
export function lastSweepLine(lastObservedAt: string | null, now: Date): string {
  if (lastObservedAt === null) return 'No sweep has succeeded yet.';
  const age = formatAge(now.getTime() - Date.parse(lastObservedAt));
  return `Last successful sweep: ${lastObservedAt} (${age === 'in the future' ? age : `${age} ago`}).`;
}
