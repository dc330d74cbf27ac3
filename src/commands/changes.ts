/** `tierwatch changes [--since T] [--until T]`: the change feed, oldest first. */
import { changesBetween, type ChangeRow } from '../query/changes.ts';
import { describeDetail } from '../report/describe-change.ts';
import { addQueryOptions, filtersFrom, formatFrom, timeArgument, timeHelp, withHistory, writeTable } from '../output/query-command.ts';
import { describable, changeShape } from '../output/shapes.ts';
import { writeRecords } from '../output/stream.ts';
import { mapRows, table, type Table } from '../output/table.ts';
import type { CommandSpec } from './context.ts';

export function changesTable(rows: Iterable<ChangeRow>): Table {
  return table(
    [{ title: 'observed_at' }, { title: 'account' }, { title: 'symbol' }, { title: 'leverage', align: 'right' }, { title: 'change' }, { title: 'what' }],
    mapRows(rows, (row) => [row.observed_at, row.account_id, row.symbol, `${row.leverage}x`, row.change, describeDetail(describable(row))]),
    'No changes in this window.',
  );
}

export const changesCommand: CommandSpec = {
  name: 'changes',
  summary: 'the change feed, oldest first: added, removed and changed tiers with their old → new values',
  flags: ['db'],
  configure(command) {
    command
      .option('--since <time>', timeHelp('first instant included'))
      .option('--until <time>', timeHelp('first instant excluded'));
    addQueryOptions(command);
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    const filters = filtersFrom(context);
    return withHistory(context, async (db) => {
      const since = timeArgument(db, context.options.since, now, '--since');
      const until = timeArgument(db, context.options.until, now, '--until');
      const rows = changesBetween(db, { since: since ?? null, until: until ?? null }, filters);
      if (format === 'table') {
        await writeTable(context, db, changesTable(rows), now);
      } else {
        await writeRecords(context.io.stdout, format, rows, changeShape);
      }
      return 0;
    });
  },
};
