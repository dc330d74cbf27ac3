/**
 * Terminal tables (cli-table3, no colours so a pasted session reads the same) and the line every
 * table ends with: the time of the last successful sweep, so a stale history is never mistaken for
 * a current one.
 */
import Table from 'cli-table3';

export type Align = 'left' | 'right';

export interface TableColumn {
  title: string;
  align?: Align;
}

/** The table as text (ending with a newline), or `empty` on its own line when there are no rows. */
export function renderTable(columns: readonly TableColumn[], rows: readonly string[][], empty: string): string {
  if (rows.length === 0) return `${empty}\n`;
  const table = new Table({
    head: columns.map((column) => column.title),
    colAligns: columns.map((column) => column.align ?? 'left'),
    style: { head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1 },
  });
  for (const row of rows) table.push(row);
  return `${table.toString()}\n`;
}

/** "3m", "2h 5m", "4d 1h": how long ago, coarse on purpose. */
export function formatAge(ms: number): string {
  if (ms < 0) return 'in the future';
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** The closing line of every table. */
export function lastSweepLine(lastObservedAt: string | null, now: Date): string {
  if (lastObservedAt === null) return 'No sweep has succeeded yet.';
  const age = formatAge(now.getTime() - Date.parse(lastObservedAt));
  return `Last successful sweep: ${lastObservedAt} (${age === 'in the future' ? age : `${age} ago`}).`;
}
