/** `tierwatch query "SQL"`: one read-only statement against the views, in any output format. */
import { prepareReadOnly } from '../query/readonly-sql.ts';
import { sqliteOf } from '../query/reader.ts';
import { addQueryOptions, formatFrom, withHistory, writeTable } from '../output/query-command.ts';
import { jsonValue, writeRecords } from '../output/stream.ts';
import { queryShape } from '../output/shapes.ts';
import { renderTable } from '../output/table.ts';
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
        const all = [...rows];
        // Numbers read best right-aligned; a column is numeric when its first non-null value is.
        const numeric = columns.map((_, index) => typeof all.find((row) => row[index] != null)?.[index] === 'number');
        const table = renderTable(
          columns.map((title, index) => ({ title, align: numeric[index] ? ('right' as const) : ('left' as const) })),
          all.map((row) => row.map(cellText)),
          '(no rows)',
        );
        await writeTable(context, db, table, now);
      } else {
        await writeRecords(context.io.stdout, format, rows, queryShape(columns));
      }
      return 0;
    });
  },
};
