/** `tierwatch diff FROM [TO]`: what differs between two points, net of what happened in between. */
import type { DiffRow } from '../query/diff.ts';
import { sourceDiffAnswer } from '../output/source-answers.ts';
import { describeDetail } from '../report/describe-change.ts';
import { addQueryOptions, formatFrom, withSource, writeTable } from '../output/query-command.ts';
import { describable } from '../output/shapes.ts';
import { writeRecords } from '../output/stream.ts';
import { mapRows, table, type Table } from '../output/table.ts';
import { TIME_FORMS } from '../query/time.ts';
import type { CommandSpec } from './context.ts';

export function diffTable(rows: Iterable<DiffRow>): Table {
  return table(
    [
      { title: 'account' },
      { title: 'symbol' },
      { title: 'leverage', align: 'right' },
      { title: 'change' },
      { title: 'what' },
    ],
    mapRows(rows, (row) => [
      row.account_id,
      row.symbol,
      `${row.leverage}x`,
      row.change,
      describeDetail(describable(row)),
    ]),
    'No differences.',
  );
}

export const diffCommand: CommandSpec = {
  name: 'diff',
  summary:
    'what differs between two points in time (TO defaults to now); with --exit-code, exits 1 when anything differs',
  flags: ['db'],
  configure(command) {
    command
      .argument('<from>', `the earlier point: ${TIME_FORMS}`)
      .argument('[to]', 'the later point (default now)')
      .option('--exit-code', 'exit 1 when there are differences, 0 when there are none (as `git diff --exit-code`)');
    addQueryOptions(command);
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    return withSource(context, async (source) => {
      const { rows, shape, from, to, note } = await sourceDiffAnswer(
        source,
        { ...context.options, from: context.args[0], to: context.args[1] },
        now,
      );
      if (format === 'table') {
        await writeTable(context, source, diffTable(rows), now, `From ${from} to ${to}:`, () => note);
      } else {
        await writeRecords(context.io.stdout, format, rows, shape);
        if (note !== '') context.io.stderr.write(note);
      }
      return context.options.exitCode === true && rows.length > 0 ? 1 : 0;
    });
  },
};
