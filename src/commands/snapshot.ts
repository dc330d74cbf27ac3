/** `tierwatch snapshot [--at T]`: every tier as it was at T (now by default). */
import type { VersionRow } from '../query/snapshot.ts';
import { sourceSnapshotAnswer } from '../output/source-answers.ts';
import { formatValue } from '../report/describe-change.ts';
import { addQueryOptions, formatFrom, timeHelp, withSource, writeTable } from '../output/query-command.ts';
import { writeRecords } from '../output/stream.ts';
import { mapRows, table, type Table } from '../output/table.ts';
import type { CommandSpec } from './context.ts';

export function snapshotTable(rows: Iterable<VersionRow>): Table {
  return table(
    [
      { title: 'account' },
      { title: 'symbol' },
      { title: 'leverage', align: 'right' },
      { title: 'initial_margin', align: 'right' },
      { title: 'maintenance_margin', align: 'right' },
      { title: 'max_notional', align: 'right' },
      { title: 'since' },
    ],
    mapRows(rows, (row) => [
      row.account_id,
      row.symbol,
      `${row.leverage}x`,
      formatValue('initial_margin', row.initial_margin),
      formatValue('maintenance_margin', row.maintenance_margin),
      formatValue('max_notional', row.max_notional),
      row.valid_from,
    ]),
    'No tiers match.',
  );
}

export const snapshotCommand: CommandSpec = {
  name: 'snapshot',
  summary: 'every tier as it was at a point in time (now by default)',
  flags: ['db'],
  configure(command) {
    command.option('--at <time>', timeHelp('the point in time (default now)'));
    addQueryOptions(command);
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    return withSource(context, async (source) => {
      const { rows, shape, at, note } = await sourceSnapshotAnswer(source, context.options, now);
      if (format === 'table') {
        await writeTable(context, source, snapshotTable(rows), now, `Tiers at ${at}:`, () => note);
      } else {
        await writeRecords(context.io.stdout, format, rows, shape);
        if (note !== '') context.io.stderr.write(note);
      }
      return 0;
    });
  },
};
