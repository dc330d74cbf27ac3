/**
 * The five read questions (changes, snapshot, diff, history, runs) from their options to their rows
 * and JSON/CSV shape, in one place: the CLI commands and the web view's /api both call these, so an
 * API answer is the CLI's `--format json` answer by construction, and a bad option gets the same
 * TierwatchError (USAGE, with the flag's name and the value quoted) from both.
 *
 * Options are given as commander parses them (camelCase keys, repeatable options as string arrays);
 * web/params.ts turns a query string into the same record.
 */
import {
  baselineRowsBetween,
  changesBetween,
  CLASSIFICATIONS,
  type Classification,
  type FeedFilters,
  type FeedRow,
  type TimeWindow,
} from '../query/changes.ts';
import { diffBetween, type DiffRow } from '../query/diff.ts';
import type { Filters } from '../query/filters.ts';
import { symbolHistory } from '../query/history.ts';
import type { HistoryReader } from '../query/reader.ts';
import { listRuns, type RunRow } from '../query/runs.ts';
import { snapshotAt, type VersionRow } from '../query/snapshot.ts';
import { CHANGE_KINDS, type ChangeKind } from '../store/change-kinds.ts';
import { TierwatchError } from '../errors.ts';
import { integerOption } from '../commands/options.ts';
import { noteForEmpty, timeArgument } from './query-command.ts';
import { changeShape, diffShape, runShape, versionShape } from './shapes.ts';
import type { RecordShape } from './stream.ts';

export type QueryOptions = Record<string, unknown>;

/** An answer: its rows (possibly a lazy iterator over a statement), how each is written, and a note. */
export interface Answer<Row> {
  rows: Iterable<Row>;
  shape: RecordShape<Row>;
}

/** The --account/--symbol filters of parsed options. */
export function filtersOf(options: QueryOptions): Filters {
  const accounts = options.account as string[] | undefined;
  const symbols = options.symbol as string[] | undefined;
  return { ...(accounts?.length ? { accounts } : {}), ...(symbols?.length ? { symbols } : {}) };
}

/** Checks a repeatable enum option: every value one of `allowed`, else USAGE naming the flag. */
function enumValues<T extends string>(value: unknown, flag: string, allowed: readonly T[]): T[] | undefined {
  if (value === undefined) return undefined;
  const values = value as string[];
  for (const item of values) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new TierwatchError(
        'USAGE',
        `Expected \`${flag}\` to be one of ${allowed.join(', ')}, got ${JSON.stringify(item)}.`,
      );
    }
  }
  return values as T[];
}

export interface ChangesAnswer extends Answer<FeedRow> {
  filters: Filters;
  feed: FeedFilters;
  window: Required<TimeWindow>;
}

/** The options of `changes` checked, before the history is read (USAGE for a bad --only/--change). */
export function changesQuestion(options: QueryOptions): { filters: Filters; feed: FeedFilters } {
  const only = enumValues<Classification>(options.only, '--only', CLASSIFICATIONS);
  const change = enumValues<ChangeKind>(options.change, '--change', CHANGE_KINDS);
  const feed: FeedFilters = {
    includeBaseline: options.includeBaseline === true,
    ...(only ? { only } : {}),
    ...(change ? { change } : {}),
  };
  return { filters: filtersOf(options), feed };
}

/** The question of `changes` with its times resolved (`run:N`, relative ages), before any row is read. */
export function changesWindow(
  db: HistoryReader,
  options: QueryOptions,
  now: Date,
): Omit<ChangesAnswer, 'rows' | 'shape'> {
  const { filters, feed } = changesQuestion(options);
  const since = timeArgument(db, options.since, now, '--since');
  const until = timeArgument(db, options.until, now, '--until');
  return { filters, feed, window: { since: since ?? null, until: until ?? null } };
}

/** `changes`: the feed in [--since, --until), oldest first, as a lazy iterator (the connection is busy until it ends). */
export function changesAnswer(db: HistoryReader, options: QueryOptions, now: Date): ChangesAnswer {
  const question = changesWindow(db, options, now);
  return {
    ...question,
    rows: changesBetween(db, question.window, question.filters, question.feed),
    shape: changeShape,
  };
}

/** How many baseline rows a `changes` answer left out (0 when they were included). */
export function baselineLeftOut(db: HistoryReader, answer: Pick<ChangesAnswer, 'feed' | 'window' | 'filters'>): number {
  return answer.feed.includeBaseline ? 0 : baselineRowsBetween(db, answer.window, answer.filters, answer.feed);
}

/** `snapshot`: every tier at --at (default now). */
export function snapshotAnswer(
  db: HistoryReader,
  options: QueryOptions,
  now: Date,
): Answer<VersionRow> & { rows: VersionRow[]; at: string; note: string } {
  const filters = filtersOf(options);
  const at = timeArgument(db, options.at, now, '--at') ?? now.toISOString();
  const rows = snapshotAt(db, at, filters);
  return { rows, shape: versionShape, at, note: rows.length === 0 ? noteForEmpty(db, filters) : '' };
}

/** `diff FROM [TO]`: the net difference; `from` and `to` as the positional arguments (TO default now). */
export function diffAnswer(
  db: HistoryReader,
  options: QueryOptions & { from: unknown; to?: unknown },
  now: Date,
): Answer<DiffRow> & { rows: DiffRow[]; from: string; to: string; note: string } {
  const filters = filtersOf(options);
  if (options.from === undefined || options.from === null) {
    throw new TierwatchError('USAGE', "missing required argument 'from'");
  }
  const from = timeArgument(db, options.from, now, 'FROM')!;
  const to = timeArgument(db, options.to, now, 'TO') ?? now.toISOString();
  const rows = diffBetween(db, from, to, filters);
  return { rows, shape: diffShape, from, to, note: rows.length === 0 ? noteForEmpty(db, filters) : '' };
}

/** `history SYMBOL`: every version of the symbol's ladder (a pattern with `*` allowed). */
export function historyAnswer(
  db: HistoryReader,
  symbol: string,
  options: QueryOptions,
): Answer<VersionRow> & { rows: VersionRow[]; note: string } {
  const filters = filtersOf(options);
  const rows = symbolHistory(db, symbol, filters);
  return { rows, shape: versionShape, note: rows.length === 0 ? noteForEmpty(db, { symbols: [symbol] }) : '' };
}

/** The options of `runs` checked (USAGE for a bad --last). */
export function runsQuestion(options: QueryOptions): {
  failed: boolean;
  last: number | undefined;
  accounts: readonly string[] | undefined;
} {
  const last = integerOption(options.last, '--last', 1, 999_999_999);
  return { failed: options.failed === true, last, accounts: filtersOf(options).accounts };
}

/** `runs`: the ledger, oldest first. */
export function runsAnswer(
  db: HistoryReader,
  options: QueryOptions,
): Answer<RunRow> & { rows: RunRow[]; failed: boolean } {
  const { failed, last, accounts } = runsQuestion(options);
  const rows = listRuns(db, { failed, ...(last === undefined ? {} : { last }), ...(accounts ? { accounts } : {}) });
  return { rows, shape: runShape, failed };
}
