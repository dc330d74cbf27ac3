/** `tierwatch runs [--failed] [--last N]`: the run ledger, with its gaps easy to see. */
import { missedBefore, type RunRow } from '../query/runs.ts';
import { runsQuestion } from '../output/answers.ts';
import { sourceRunsAnswer } from '../output/source-answers.ts';
import { addQueryOptions, formatFrom, withSource, writeTable } from '../output/query-command.ts';
import { writeRecords } from '../output/stream.ts';
import { table, type Table } from '../output/table.ts';
import type { CommandSpec } from './context.ts';

const ERROR_WIDTH = 60;

/** The "note" of each run: the error of a run that did not succeed, and the runs missed before it. */
export function runNotes(rows: readonly RunRow[], markMissed: boolean): string[] {
  const missed = markMissed ? missedBefore(rows) : new Map<number, number>();
  return rows.map((row) => {
    const parts: string[] = [];
    const gap = missed.get(row.run_id);
    if (gap !== undefined) parts.push(`⚠ gap: ~${gap} run${gap === 1 ? '' : 's'} missed before this one`);
    if (row.status !== 'ok' && row.status !== 'running') {
      const error = [row.error_code, row.error_message].filter(Boolean).join(': ');
      parts.push(
        `✗ ${row.status.toUpperCase()}${error ? ` ${error.length > ERROR_WIDTH ? `${error.slice(0, ERROR_WIDTH - 1)}…` : error}` : ''}`,
      );
    }
    return parts.join('; ');
  });
}

export function runsTable(rows: readonly RunRow[], markMissed: boolean): Table {
  const notes = runNotes(rows, markMissed);
  return table(
    [
      { title: 'run_id', align: 'right' },
      { title: 'account' },
      { title: 'started_at' },
      { title: 'observed_at' },
      { title: 'status' },
      { title: 'pages', align: 'right' },
      { title: 'tiers', align: 'right' },
      { title: 'changes', align: 'right' },
      { title: 'note' },
    ],
    rows.map((row, index) => [
      String(row.run_id),
      row.account_id,
      row.started_at,
      row.observed_at ?? '–',
      row.status,
      String(row.pages),
      row.tiers === null ? '–' : String(row.tiers),
      row.changes === null ? '–' : String(row.changes),
      notes[index]!,
    ]),
    'No runs.',
  );
}

export const runsCommand: CommandSpec = {
  name: 'runs',
  summary: 'the run ledger, oldest first, with failed, aborted, abandoned and missed runs marked',
  flags: ['db'],
  configure(command) {
    command
      .option('--failed', 'only the runs that did not succeed (failed, aborted, abandoned)')
      .option('--last <n>', 'only the last N runs');
    addQueryOptions(command, { symbol: false });
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    // Checked before the history is opened: a bad --last is a usage error even without a database.
    runsQuestion(context.options);
    return withSource(context, async (source) => {
      const { rows, shape, failed } = await sourceRunsAnswer(source, context.options);
      if (format === 'table') {
        await writeTable(context, source, runsTable(rows, !failed), now);
      } else {
        await writeRecords(context.io.stdout, format, rows, shape);
      }
      return 0;
    });
  },
};
