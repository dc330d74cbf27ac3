/** `tierwatch changes [--since T] [--until T]`: the change feed, oldest first. */
import { baselineRowsBetween, changesBetween, CLASSIFICATIONS, type Classification, type FeedFilters, type FeedRow } from '../query/changes.ts';
import { describeDetail } from '../report/describe-change.ts';
import { addQueryOptions, collectValues, countingRows, filtersFrom, formatFrom, noteForEmpty, timeArgument, timeHelp, withHistory, writeTable } from '../output/query-command.ts';
import { describable, changeShape } from '../output/shapes.ts';
import { writeRecords } from '../output/stream.ts';
import { mapRows, table, type Table } from '../output/table.ts';
import { CHANGE_KINDS, type ChangeKind } from '../store/change-kinds.ts';
import { TierwatchError } from '../errors.ts';
import type { CommandSpec } from './context.ts';

export function changesTable(rows: Iterable<FeedRow>): Table {
  return table(
    [
      { title: 'observed_at' }, { title: 'account' }, { title: 'symbol' }, { title: 'leverage', align: 'right' }, { title: 'change' },
      { title: 'direction' }, { title: 'what' },
    ],
    mapRows(rows, (row) => [
      row.observed_at, row.account_id, row.symbol, `${row.leverage}x`, row.change, row.classification, describeDetail(describable(row)),
    ]),
    'No changes in this window.',
  );
}

/** The note under the table when the baseline was left out of the answer. */
export function baselineNote(leftOut: number): string {
  if (leftOut === 0) return '';
  return `${leftOut} baseline row(s) left out (an account's first sweep lists every tier as added): add --include-baseline to see them.\n`;
}

/** Checks a repeatable enum option: every value one of `allowed`, else USAGE naming the flag. */
function enumValues<T extends string>(value: unknown, flag: string, allowed: readonly T[]): T[] | undefined {
  if (value === undefined) return undefined;
  const values = value as string[];
  for (const item of values) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new TierwatchError('USAGE', `Expected \`${flag}\` to be one of ${allowed.join(', ')}, got ${JSON.stringify(item)}.`);
    }
  }
  return values as T[];
}

export const changesCommand: CommandSpec = {
  name: 'changes',
  summary: 'the change feed, oldest first: added, removed and changed tiers with their old → new values (without the baseline)',
  flags: ['db'],
  configure(command) {
    command
      .option('--since <time>', timeHelp('first instant included'))
      .option('--until <time>', timeHelp('first instant excluded'))
      .option('--only <direction>', `only changes in this direction: ${CLASSIFICATIONS.join(', ')}; repeatable`, collectValues)
      .option('--change <kind>', `only this kind of change: ${CHANGE_KINDS.join(', ')}; repeatable`, collectValues)
      .option('--include-baseline', "include each account's first sweep (every tier listed as added)");
    addQueryOptions(command);
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    const filters = filtersFrom(context);
    const only = enumValues<Classification>(context.options.only, '--only', CLASSIFICATIONS);
    const change = enumValues<ChangeKind>(context.options.change, '--change', CHANGE_KINDS);
    const feed: FeedFilters = { includeBaseline: context.options.includeBaseline === true, ...(only ? { only } : {}), ...(change ? { change } : {}) };
    return withHistory(context, async (db) => {
      const since = timeArgument(db, context.options.since, now, '--since');
      const until = timeArgument(db, context.options.until, now, '--until');
      const window = { since: since ?? null, until: until ?? null };
      const rows = changesBetween(db, window, filters, feed);
      if (format === 'table') {
        const counted = countingRows(rows);
        await writeTable(context, db, changesTable(counted.rows), now, undefined, () => {
          const leftOut = feed.includeBaseline ? 0 : baselineRowsBetween(db, window, filters, feed);
          const note = counted.count() === 0 && leftOut === 0 ? noteForEmpty(db, filters) : '';
          return `${baselineNote(leftOut)}${note}`;
        });
      } else {
        const count = await writeRecords(context.io.stdout, format, rows, changeShape);
        if (count === 0) context.io.stderr.write(noteForEmpty(db, filters));
      }
      return 0;
    });
  },
};

