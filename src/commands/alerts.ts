/**
 * `tierwatch alerts [--pending] [--last N]`: the webhook outbox — what is pending, what was
 * delivered, how many attempts failed and why — and whether a `stale` notification is outstanding.
 * Webhook URLs are shown as scheme://host/… only: their paths are often credentials.
 */
import { redactUrl } from '../config.ts';
import { listOutbox, OUTBOX_LISTING_COLUMNS, readAlertState, type OutboxListing } from '../alerts/outbox.ts';
import { STALENESS_KEY, parseStalenessState } from '../alerts/staleness.ts';
import { addQueryOptions, formatFrom, withHistory } from '../output/query-command.ts';
import { writeRecords, writeText, type RecordShape } from '../output/stream.ts';
import { renderTable } from '../output/table.ts';
import type { CommandSpec } from './context.ts';
import { integerOption } from './options.ts';

const ERROR_WIDTH = 60;

const outboxShape: RecordShape<OutboxListing> = {
  json: (row) => ({ ...row, url: redactUrl(row.url) }),
  csvColumns: OUTBOX_LISTING_COLUMNS,
  csv: (row) => OUTBOX_LISTING_COLUMNS.map((column) => (column === 'url' ? redactUrl(row.url) : row[column])),
};

export function alertsTable(rows: readonly OutboxListing[], width?: number): string {
  return renderTable(
    [
      { title: 'id', align: 'right' }, { title: 'kind' }, { title: 'run', align: 'right' }, { title: 'webhook' },
      { title: 'created_at' }, { title: 'status' }, { title: 'attempts', align: 'right' }, { title: 'note' },
    ],
    rows.map((row) => {
      const failed = row.status === 'delivered' ? row.attempts - 1 : row.attempts;
      const note =
        row.status === 'delivered'
          ? `delivered ${row.delivered_at}${failed > 0 ? ` after ${failed} failed attempt${failed === 1 ? '' : 's'}` : ''}`
          : row.last_error === null
            ? 'not tried yet'
            : `✗ ${row.last_attempt_at}: ${row.last_error.length > ERROR_WIDTH ? `${row.last_error.slice(0, ERROR_WIDTH - 1)}…` : row.last_error}`;
      return [
        String(row.outbox_id), row.kind, row.run_id === null ? '–' : String(row.run_id), redactUrl(row.url), row.created_at,
        row.status, String(row.attempts), note,
      ];
    }),
    'No notifications.',
    { width },
  );
}

export const alertsCommand: CommandSpec = {
  name: 'alerts',
  summary: 'the webhook outbox: pending and delivered notifications, failed attempts, staleness state',
  flags: ['db'],
  configure(command) {
    command
      .option('--pending', 'only the notifications not delivered yet')
      .option('--last <n>', 'only the last N notifications');
    addQueryOptions(command, { filters: false });
  },
  async run(context) {
    const format = formatFrom(context);
    const last = integerOption(context.options.last, '--last', 1, 999_999_999);
    const pendingOnly = context.options.pending === true;
    return withHistory(context, async (db) => {
      const rows = listOutbox(db, { pendingOnly, ...(last === undefined ? {} : { last }) });
      if (format !== 'table') {
        await writeRecords(context.io.stdout, format, rows, outboxShape);
        return 0;
      }
      const staleness = parseStalenessState(readAlertState(db, STALENESS_KEY)?.value ?? null);
      const pending = rows.filter((row) => row.status === 'pending').length;
      const footer = [
        `${pending} pending of ${rows.length} shown.`,
        staleness?.state === 'stale' ? `Collection has been reported STALE since ${staleness.since}.` : null,
      ].filter((line) => line !== null);
      await writeText(context.io.stdout, `${alertsTable(rows, context.io.stdoutColumns)}${footer.join('\n')}\n`);
      return 0;
    });
  },
};
