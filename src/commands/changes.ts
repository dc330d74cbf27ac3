/** `tierwatch changes [--since T] [--until T]`: the change feed, oldest first. */
import { CLASSIFICATIONS, type FeedRow } from '../query/changes.ts';
import { changesQuestion } from '../output/answers.ts';
import { sourceBaselineLeftOut, sourceChangesAnswer, sourceNoteForEmpty } from '../output/source-answers.ts';
import { describeDetail } from '../report/describe-change.ts';
import {
  addQueryOptions,
  collectValues,
  countingRows,
  formatFrom,
  timeHelp,
  withSource,
  writeTable,
} from '../output/query-command.ts';
import { describable } from '../output/shapes.ts';
import { writeRecords } from '../output/stream.ts';
import { mapRows, table, type AsyncTable, type Rows, type Table } from '../output/table.ts';
import { CHANGE_KINDS } from '../store/change-kinds.ts';
import type { CommandSpec } from './context.ts';

export function changesTable(rows: Iterable<FeedRow>): Table;
export function changesTable(rows: Rows<FeedRow>): Table | AsyncTable;
export function changesTable(rows: Rows<FeedRow>): Table | AsyncTable {
  return table(
    [
      { title: 'observed_at' },
      { title: 'account' },
      { title: 'symbol' },
      { title: 'leverage', align: 'right' },
      { title: 'change' },
      { title: 'direction' },
      { title: 'what' },
    ],
    mapRows(rows, (row) => [
      row.observed_at,
      row.account_id,
      row.symbol,
      `${row.leverage}x`,
      row.change,
      row.classification,
      describeDetail(describable(row)),
    ]),
    'No changes in this window.',
  );
}

/** The note under the table when the baseline was left out of the answer. */
export function baselineNote(leftOut: number): string {
  if (leftOut === 0) return '';
  return `${leftOut} baseline row(s) left out (an account's first sweep lists every tier as added): add --include-baseline to see them.\n`;
}

export const changesCommand: CommandSpec = {
  name: 'changes',
  summary:
    'the change feed, oldest first: added, removed and changed tiers with their old → new values (without the baseline)',
  flags: ['db'],
  configure(command) {
    command
      .option('--since <time>', timeHelp('first instant included'))
      .option('--until <time>', timeHelp('first instant excluded'))
      .option(
        '--only <direction>',
        `only changes in this direction: ${CLASSIFICATIONS.join(', ')}; repeatable`,
        collectValues,
      )
      .option('--change <kind>', `only this kind of change: ${CHANGE_KINDS.join(', ')}; repeatable`, collectValues)
      .option('--include-baseline', "include each account's first sweep (every tier listed as added)");
    addQueryOptions(command);
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    // Checked before the history is opened: a bad --only is a usage error even without a database.
    changesQuestion(context.options);
    return withSource(context, async (source) => {
      const answer = await sourceChangesAnswer(source, context.options, now);
      if (format === 'table') {
        const counted = countingRows(answer.rows);
        await writeTable(context, source, changesTable(counted.rows), now, undefined, async () => {
          const leftOut = await sourceBaselineLeftOut(source, answer);
          const note = counted.count() === 0 && leftOut === 0 ? await sourceNoteForEmpty(source, answer.filters) : '';
          return `${baselineNote(leftOut)}${note}`;
        });
      } else {
        const count = await writeRecords(context.io.stdout, format, answer.rows, answer.shape);
        if (count === 0) context.io.stderr.write(await sourceNoteForEmpty(source, answer.filters));
      }
      return 0;
    });
  },
};
