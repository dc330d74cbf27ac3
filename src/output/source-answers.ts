/**
 * The query commands' answers read through a HistorySource (either backend): the asynchronous
 * twins of answers.ts, for the query commands and the web view on either backend. The options are checked
 * by the same functions (filtersOf, changesQuestion, runsQuestion), the rows come in the same shape,
 * and the errors come in the same order: a bad option, then a bad time, then an instant before the
 * history.
 */
import { optionText } from '../commands/options.ts';
import { TierwatchError } from '../errors.ts';
import type { FeedRow } from '../query/changes.ts';
import type { DiffRow } from '../query/diff.ts';
import type { Filters } from '../query/filters.ts';
import type { RunRow } from '../query/runs.ts';
import type { VersionRow } from '../query/snapshot.ts';
import type { HistorySource } from '../query/source.ts';
import { hintText } from '../query/symbol-hint.ts';
import { parseTimeArgument, resolveTime } from '../query/time.ts';
import {
  changesQuestion,
  filtersOf,
  runsQuestion,
  type Answer,
  type ChangesAnswer,
  type QueryOptions,
} from './answers.ts';
import { changeShape, diffShape, runShape, versionShape } from './shapes.ts';
import type { Rows } from './table.ts';

/**
 * A time argument as an ISO instant, or undefined when absent; `run:<id>` is looked up in the
 * history. Throws USAGE naming `flag` (see timeArgument).
 */
export async function sourceTime(
  source: HistorySource,
  value: unknown,
  now: Date,
  flag: string,
): Promise<string | undefined> {
  if (value === undefined || value === null) return undefined;
  const spec = parseTimeArgument(optionText(value), now, flag);
  const run = spec.kind === 'run' ? await source.runInstant(spec.runId) : undefined;
  return resolveTime(spec, () => run, flag);
}

/** The line that explains an empty answer to a --symbol filter that only differs in case ('' otherwise). */
export async function sourceNoteForEmpty(source: HistorySource, filters: Filters): Promise<string> {
  if ((filters.symbols ?? []).length === 0) return '';
  const hint = hintText(filters, await source.symbolSuggestions(filters));
  return hint === '' ? '' : `${hint}\n`;
}

/** The question of `changes` with its times resolved (`run:N`, relative ages), before any row is read. */
export async function sourceChangesWindow(
  source: HistorySource,
  options: QueryOptions,
  now: Date,
): Promise<Omit<ChangesAnswer, 'rows' | 'shape'>> {
  const { filters, feed } = changesQuestion(options);
  const since = await sourceTime(source, options.since, now, '--since');
  const until = await sourceTime(source, options.until, now, '--until');
  return { filters, feed, window: { since: since ?? null, until: until ?? null } };
}

/** `changes`: the feed in [--since, --until), oldest first. */
export async function sourceChangesAnswer(
  source: HistorySource,
  options: QueryOptions,
  now: Date,
): Promise<Omit<ChangesAnswer, 'rows'> & { rows: Rows<FeedRow> }> {
  const { filters, feed, window } = await sourceChangesWindow(source, options, now);
  return { filters, feed, window, rows: await source.changes(window, filters, feed), shape: changeShape };
}

/** How many baseline rows a `changes` answer left out (0 when they were included). */
export async function sourceBaselineLeftOut(
  source: HistorySource,
  answer: Pick<ChangesAnswer, 'feed' | 'window' | 'filters'>,
): Promise<number> {
  return answer.feed.includeBaseline ? 0 : source.baselineRows(answer.window, answer.filters, answer.feed);
}

/** `snapshot`: every tier at --at (default now). */
export async function sourceSnapshotAnswer(
  source: HistorySource,
  options: QueryOptions,
  now: Date,
): Promise<Answer<VersionRow> & { rows: VersionRow[]; at: string; note: string }> {
  const filters = filtersOf(options);
  const at = (await sourceTime(source, options.at, now, '--at')) ?? now.toISOString();
  const rows = await source.snapshot(at, filters);
  return { rows, shape: versionShape, at, note: rows.length === 0 ? await sourceNoteForEmpty(source, filters) : '' };
}

/** `diff FROM [TO]`: the net difference (TO default now). */
export async function sourceDiffAnswer(
  source: HistorySource,
  options: QueryOptions & { from: unknown; to?: unknown },
  now: Date,
): Promise<Answer<DiffRow> & { rows: DiffRow[]; from: string; to: string; note: string }> {
  const filters = filtersOf(options);
  if (options.from === undefined || options.from === null) {
    throw new TierwatchError('USAGE', "missing required argument 'from'");
  }
  const from = (await sourceTime(source, options.from, now, 'FROM'))!;
  const to = (await sourceTime(source, options.to, now, 'TO')) ?? now.toISOString();
  const rows = await source.diff(from, to, filters);
  return {
    rows,
    shape: diffShape,
    from,
    to,
    note: rows.length === 0 ? await sourceNoteForEmpty(source, filters) : '',
  };
}

/** `history SYMBOL`: every version of the symbol's ladder (a pattern with `*` allowed). */
export async function sourceHistoryAnswer(
  source: HistorySource,
  symbol: string,
  options: QueryOptions,
): Promise<Answer<VersionRow> & { rows: VersionRow[]; note: string }> {
  const rows = await source.history(symbol, filtersOf(options));
  return {
    rows,
    shape: versionShape,
    note: rows.length === 0 ? await sourceNoteForEmpty(source, { symbols: [symbol] }) : '',
  };
}

/** `runs`: the ledger, oldest first. */
export async function sourceRunsAnswer(
  source: HistorySource,
  options: QueryOptions,
): Promise<Answer<RunRow> & { rows: RunRow[]; failed: boolean }> {
  const { failed, last, accounts } = runsQuestion(options);
  const rows = await source.runs({
    failed,
    ...(last === undefined ? {} : { last }),
    ...(accounts ? { accounts } : {}),
  });
  return { rows, shape: runShape, failed };
}
