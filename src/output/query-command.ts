/**
 * What the six query commands share: the --format/--account/--symbol options, opening the history
 * read-only (and closing it), reading time arguments, and the table footer.
 */
import type { Command } from 'commander';
import type { CommandContext } from '../commands/context.ts';
import { optionText } from '../commands/options.ts';
import { requireSqlitePath } from '../config.ts';
import { openDatabase } from '../store/db.ts';
import type { Filters } from '../query/filters.ts';
import { cachedStatement, type HistoryReader } from '../query/reader.ts';
import { parseTimeArgument, resolveTime, TIME_FORMS } from '../query/time.ts';
import { symbolHint } from '../query/symbol-hint.ts';
import { RUN_INSTANT_SQL, SqliteHistorySource, type HistorySource, type RunInstant } from '../query/source.ts';
import { OUTPUT_FORMATS, resolveFormat, type OutputFormat } from './format.ts';
import {
  asyncTableLines,
  isAsyncRows,
  lastSweepLine,
  tableLines,
  type AsyncTable,
  type Rows,
  type Table,
} from './table.ts';
import { writeLines } from './stream.ts';
import { escapeControl } from './terminal-text.ts';

function collectPatterns(value: string, previous: string[] = []): string[] {
  const added = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  return [...previous, ...added];
}

/** A repeatable option's values, commas allowed too (`--only tightening --only mixed` = `--only tightening,mixed`). */
export const collectValues = collectPatterns;

/** The line that explains an empty answer to a --symbol filter that only differs in case ('' otherwise). */
export function noteForEmpty(db: HistoryReader, filters: Filters): string {
  const hint = symbolHint(db, filters);
  return hint === '' ? '' : `${hint}\n`;
}

/** Adds --format, and unless `filters` is false, the repeatable --account and --symbol. */
export function addQueryOptions(command: Command, options: { filters?: boolean; symbol?: boolean } = {}): void {
  command.option(
    '--format <format>',
    `output format: ${OUTPUT_FORMATS.join(', ')} (default: table on a terminal, json otherwise)`,
  );
  if (options.filters === false) return;
  command.option(
    '--account <pattern>',
    'only this account (`primary` or a subaccount id); `*` is a wildcard; repeatable',
    collectPatterns,
  );
  if (options.symbol !== false) {
    command.option(
      '--symbol <pattern>',
      'only this symbol, e.g. META-USD or *-USD; `*` is a wildcard; repeatable',
      collectPatterns,
    );
  }
}

/** Help text for a time argument. */
export function timeHelp(what: string): string {
  return `${what}: ${TIME_FORMS}`;
}

export function formatFrom(context: CommandContext): OutputFormat {
  return resolveFormat(context.options.format, context.io.stdoutIsTTY);
}

/**
 * Opens the history, SQLite or Postgres, read-only for `use`, and closes it whatever happens. The
 * Postgres code is loaded only for a Postgres history.
 */
export async function withSource<T>(context: CommandContext, use: (source: HistorySource) => Promise<T>): Promise<T> {
  const target = context.config().database;
  let source: HistorySource;
  if (target.kind === 'sqlite') {
    const db = openDatabase(target.path, { readonly: true });
    source = new SqliteHistorySource(db, () => db.close());
  } else {
    const { PgHistorySource } = await import('../store/pg/queries.ts');
    source = await PgHistorySource.open(target.url.reveal());
  }
  try {
    return await use(source);
  } finally {
    await source.close();
  }
}

/** Opens the SQLite history read-only for `use`, and closes it whatever happens (SQLite-only commands). */
export async function withHistory<T>(context: CommandContext, use: (db: HistoryReader) => Promise<T>): Promise<T> {
  const db = openDatabase(requireSqlitePath(context.config().database), { readonly: true });
  try {
    return await use(db);
  } finally {
    db.close();
  }
}

/**
 * A time argument as an ISO instant, or undefined when absent. `run:<id>` is looked up in `db`.
 * Throws USAGE naming `flag` and listing the accepted forms.
 */
export function timeArgument(db: HistoryReader, value: unknown, now: Date, flag: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  const spec = parseTimeArgument(optionText(value), now, flag);
  return resolveTime(spec, (runId) => cachedStatement<RunInstant>(db, RUN_INSTANT_SQL).get(runId), flag);
}

/**
 * Streams a table (an optional heading line first), laid out to fit the terminal's width, then
 * the last-successful-sweep line.
 */
export async function writeTable(
  context: CommandContext,
  history: HistorySource,
  source: Table | AsyncTable,
  now: Date,
  heading?: string,
  /** Notes printed under the table (each ending in a newline, or ''), read once the rows are out. */
  notes?: () => string | Promise<string>,
): Promise<void> {
  const footer = lastSweepLine((await history.bounds())?.last_observed_at ?? null, now);
  const width = context.io.stdoutColumns;
  const open = await writeLines(
    context.io.stdout,
    isAsyncRows<readonly string[]>(source.rows)
      ? (async function* () {
          if (heading !== undefined) yield heading;
          yield* asyncTableLines(source as AsyncTable, { width });
        })()
      : (function* () {
          if (heading !== undefined) yield heading;
          yield* tableLines(source as Table, { width });
        })(),
  );
  // The notes are read only once the rows are out (a SQLite statement is busy until then), and not
  // at all when the reader went away.
  if (!open) return;
  const text = (await notes?.()) ?? '';
  await writeLines(
    context.io.stdout,
    (function* () {
      if (text !== '') {
        for (const line of text.replace(/\n$/, '').split('\n')) yield* wrapWords(escapeControl(line), width);
      }
      yield footer;
    })(),
  );
}

/** A note's line wrapped between words to `width` (a word longer than the width stays whole). */
function* wrapWords(line: string, width: number | undefined): Generator<string> {
  if (width === undefined || line.length <= width) {
    yield line;
    return;
  }
  let current = '';
  for (const word of line.split(' ')) {
    if (current !== '' && current.length + 1 + word.length > width) {
      yield current;
      current = word;
    } else current = current === '' ? word : `${current} ${word}`;
  }
  if (current !== '') yield current;
}

/** Passes `rows` through lazily, counting them, so a note can depend on whether any were printed. */
export function countingRows<Row>(rows: Iterable<Row>): { rows: Iterable<Row>; count: () => number };
export function countingRows<Row>(rows: Rows<Row>): { rows: Rows<Row>; count: () => number };
export function countingRows<Row>(rows: Rows<Row>): { rows: Rows<Row>; count: () => number } {
  let count = 0;
  return {
    rows: isAsyncRows(rows)
      ? (async function* () {
          for await (const row of rows) {
            count += 1;
            yield row;
          }
        })()
      : (function* () {
          for (const row of rows) {
            count += 1;
            yield row;
          }
        })(),
    count: () => count,
  };
}
