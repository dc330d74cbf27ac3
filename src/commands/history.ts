/** `tierwatch history SYMBOL`: every version of a symbol's ladder over time, as a timeline. */
import type { VersionRow } from '../query/snapshot.ts';
import { tierKey, TRACKED_COLUMNS, changedColumns } from '../history/tier.ts';
import { describeMoves, formatValue } from '../report/describe-change.ts';
import { addQueryOptions, formatFrom, withSource, writeTable } from '../output/query-command.ts';
import { sourceHistoryAnswer } from '../output/source-answers.ts';
import { flattenSides } from '../output/shapes.ts';
import { writeRecords } from '../output/stream.ts';
import { table, type Table } from '../output/table.ts';
import type { CommandSpec } from './context.ts';

/**
 * What each version was, read against the tier's previous version: "listed", "relisted", or the
 * moves ("max_notional 190,000 → 150,000 (−21.1%)"); and "removed" on a version whose end no other
 * version continues.
 */
export function timelineNotes(rows: readonly VersionRow[]): string[] {
  const previous = new Map<string, VersionRow>();
  const continued = new Set<string>();
  const keyOf = (row: VersionRow): string => `${row.account_id}\u0000${tierKey(row.symbol, row.leverage)}`;
  for (const row of rows) continued.add(`${keyOf(row)}\u0000${row.valid_from}`);
  return rows.map((row) => {
    const key = keyOf(row);
    const before = previous.get(key);
    previous.set(key, row);
    let note: string;
    if (before === undefined) note = 'listed';
    else if (before.valid_to !== row.valid_from) note = 'relisted';
    else {
      note = describeMoves({
        symbol: row.symbol,
        leverage: row.leverage,
        change: 'changed',
        changed_columns: changedColumns(before, row),
        ...(flattenSides(before, row) as Record<
          `old_${(typeof TRACKED_COLUMNS)[number]}` | `new_${(typeof TRACKED_COLUMNS)[number]}`,
          number | null
        >),
      }).join('; ');
    }
    if (row.valid_to !== null && !continued.has(`${key}\u0000${row.valid_to}`)) note += `; removed at ${row.valid_to}`;
    return note;
  });
}

export function historyTable(rows: readonly VersionRow[], symbol: string): Table {
  const notes = timelineNotes(rows);
  return table(
    [
      { title: 'valid_from' },
      { title: 'valid_to' },
      { title: 'account' },
      { title: 'symbol' },
      { title: 'leverage', align: 'right' },
      { title: 'initial_margin', align: 'right' },
      { title: 'maintenance_margin', align: 'right' },
      { title: 'max_notional', align: 'right' },
      { title: 'what' },
    ],
    rows.map((row, index) => [
      row.valid_from,
      row.valid_to ?? '(current)',
      row.account_id,
      row.symbol,
      `${row.leverage}x`,
      formatValue('initial_margin', row.initial_margin),
      formatValue('maintenance_margin', row.maintenance_margin),
      formatValue('max_notional', row.max_notional),
      notes[index]!,
    ]),
    `No history for ${symbol}.`,
  );
}

export const historyCommand: CommandSpec = {
  name: 'history',
  summary: "every version of a symbol's leverage ladder over time, as a timeline",
  flags: ['db'],
  configure(command) {
    command.argument('<symbol>', 'the symbol, e.g. META-USD (`*` is a wildcard)');
    addQueryOptions(command, { symbol: false });
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    const symbol = context.args[0]!;
    return withSource(context, async (source) => {
      const { rows, shape, note } = await sourceHistoryAnswer(source, symbol, context.options);
      if (format === 'table') {
        await writeTable(context, source, historyTable(rows, symbol), now, undefined, () => note);
      } else {
        await writeRecords(context.io.stdout, format, rows, shape);
        if (note !== '') context.io.stderr.write(note);
      }
      return 0;
    });
  },
};
