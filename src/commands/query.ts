/** `tierwatch query "SQL"`: one read-only statement against the views, in any output format. */
import { prepareReadOnly } from '../query/readonly-sql.ts';
import { sqliteOf } from '../query/reader.ts';
import { addQueryOptions, formatFrom, withHistory, writeTable } from '../output/query-command.ts';
import { jsonValue, writeRecords } from '../output/stream.ts';
import { queryShape } from '../output/shapes.ts';
import { mapRows, SAMPLE_ROWS, table } from '../output/table.ts';
import type { CommandSpec } from './context.ts';

function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const json = jsonValue(value);
  return typeof json === 'string' ? json : String(json);
}

export const queryCommand: CommandSpec = {
  name: 'query',
  summary: 'run one read-only SQL statement against the views (runs, tier_versions, tiers_current, tier_changes)',
  flags: ['db'],
  configure(command) {
    command.argument('<sql>', 'a SELECT (or WITH, VALUES, EXPLAIN, read-only PRAGMA); writes are refused');
    addQueryOptions(command, { filters: false });
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    const sql = context.args[0] ?? '';
    return withHistory(context, async (db) => {
      const statement = prepareReadOnly(sqliteOf(db), sql).raw(true);
      const columns = statement.columns().map((column) => column.name);
      const rows = statement.iterate() as IterableIterator<unknown[]>;
      if (format === 'table') {
        // Numbers read best right-aligned; a column is numeric when its first non-null value in the
        // leading rows is. Those rows are read ahead, the rest streamed after them.
        // (next(), not for…of with break: a break would close the statement's iterator.)
        const head: unknown[][] = [];
        for (let next = rows.next(); next.done !== true; next = head.length < SAMPLE_ROWS ? rows.next() : { done: true, value: undefined }) {
          head.push(next.value);
        }
        const numeric = columns.map((_, index) => typeof head.find((row) => row[index] != null)?.[index] === 'number');
        const all = head.length < SAMPLE_ROWS ? head : (function* () {
          yield* head;
          yield* rows;
        })();
        const source = table(
          columns.map((title, index) => ({ title, align: numeric[index] ? ('right' as const) : ('left' as const) })),
          mapRows(all, (row) => row.map(cellText)),
          '(no rows)',
        );
        await writeTable(context, db, source, now);
      } else {
        await writeRecords(context.io.stdout, format, rows, queryShape(columns));
      }
      return 0;
    });
  },
};
