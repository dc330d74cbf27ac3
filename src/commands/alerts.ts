/**
 * `tierwatch alerts [--pending] [--dead] [--last N]`: the webhook outbox — what is pending, what
 * was delivered, what was given up (dead), how many attempts failed and why — and whether a `stale`
 * notification is outstanding. Webhook URLs are shown as scheme://host/… only: their paths are
 * often credentials.
 *
 * `tierwatch alerts retry ID|--dead` and `tierwatch alerts drop ID` act on dead notifications as a
 * writer: on SQLite under the writer lock (so never while the daemon runs on the same database); on
 * Postgres in one transaction that needs no lease and cannot race the leader's delivery (pg-dead.ts).
 */
import fs from 'node:fs';
import { redactUrl } from '../config.ts';
import { TierwatchError } from '../errors.ts';
import type { DeadTarget } from '../alerts/dead.ts';
import {
  ALERT_STATE_SQL,
  listOutbox,
  listOutboxSql,
  OUTBOX_LISTING_COLUMNS,
  readAlertState,
  type OutboxListing,
  type OutboxListingOptions,
} from '../alerts/outbox.ts';
import { STALENESS_KEY, parseStalenessState } from '../alerts/staleness.ts';
import { addQueryOptions, formatFrom, withHistory } from '../output/query-command.ts';
import { writeRecords, writeText, type RecordShape } from '../output/stream.ts';
import { renderTable } from '../output/table.ts';
import type { CommandContext, CommandSpec } from './context.ts';
import { integerOption } from './options.ts';

const ERROR_WIDTH = 60;

function clip(text: string): string {
  return text.length > ERROR_WIDTH ? `${text.slice(0, ERROR_WIDTH - 1)}…` : text;
}

const ACTIONS = ['retry', 'drop'] as const;

const outboxShape: RecordShape<OutboxListing> = {
  json: (row) => ({ ...row, url: redactUrl(row.url) }),
  csvColumns: OUTBOX_LISTING_COLUMNS,
  csv: (row) => OUTBOX_LISTING_COLUMNS.map((column) => (column === 'url' ? redactUrl(row.url) : row[column])),
};

export function alertsTable(rows: readonly OutboxListing[], width?: number): string {
  return renderTable(
    [
      { title: 'id', align: 'right' },
      { title: 'kind' },
      { title: 'run', align: 'right' },
      { title: 'webhook' },
      { title: 'created_at' },
      { title: 'status' },
      { title: 'attempts', align: 'right' },
      { title: 'note' },
    ],
    rows.map((row) => {
      const failed = row.status === 'delivered' ? row.attempts - 1 : row.attempts;
      const note =
        row.status === 'delivered'
          ? `delivered ${row.delivered_at}${failed > 0 ? ` after ${failed} failed attempt${failed === 1 ? '' : 's'}` : ''}`
          : row.status === 'dead'
            ? `✗ dead ${row.dead_at}: ${clip(row.dead_reason ?? '')}`
            : row.last_error === null
              ? 'not tried yet'
              : `✗ ${row.last_attempt_at}: ${clip(row.last_error)}`;
      return [
        String(row.outbox_id),
        row.kind,
        row.run_id === null ? '–' : String(row.run_id),
        redactUrl(row.url),
        row.created_at,
        row.status,
        String(row.attempts),
        note,
      ];
    }),
    'No notifications.',
    { width },
  );
}

function describeTarget(target: DeadTarget): string {
  return `notification ${target.outbox_id} (${target.kind}${target.run_id === null ? '' : `, run ${target.run_id}`})`;
}

/** `alerts retry ID|--dead` and `alerts drop ID`: writes, under the writer lock. */
async function actOnDead(context: CommandContext, action: (typeof ACTIONS)[number]): Promise<number> {
  const [, idText, extra] = context.args;
  const all = context.options.dead === true;
  if (extra !== undefined) {
    throw new TierwatchError(
      'USAGE',
      `\`alerts ${action}\` takes one notification id, got also ${JSON.stringify(extra)}.`,
    );
  }
  if (action === 'drop' && all) {
    throw new TierwatchError(
      'USAGE',
      '`alerts drop` takes one notification id, not `--dead`: drop them one by one, after reading why they died.',
    );
  }
  if ((idText === undefined) === !all) {
    throw new TierwatchError(
      'USAGE',
      action === 'retry'
        ? '`alerts retry` takes a notification id or `--dead` (every dead one), not both.'
        : '`alerts drop` takes a notification id.',
    );
  }
  const id =
    idText === undefined ? undefined : integerOption(idText, `alerts ${action} ID`, 1, Number.MAX_SAFE_INTEGER);
  const target = context.config().database;
  if (target.kind === 'postgres') {
    const { dropDeadPg, retryDeadPg } = await import('../alerts/pg-dead.ts');
    if (action === 'drop') return reportDropped(context, await dropDeadPg(target.url.reveal(), id!));
    return reportRetried(context, await retryDeadPg(target.url.reveal(), id ?? 'dead', new Date()));
  }
  const dbPath = target.path;
  // A writer open creates the database; there is nothing to retry or drop in one that is not there.
  if (!fs.existsSync(dbPath)) {
    throw new TierwatchError('DB_EMPTY', `There is no database at ${dbPath}: no notification to ${action}.`);
  }
  // Loaded here, as every command loads its modules in run(): `tierwatch --version` and `--help` load only the CLI.
  const { withWriter } = await import('./writer.ts');
  const { dropDead, retryDead } = await import('../alerts/dead.ts');
  return withWriter(dbPath, `alerts ${action}`, context.logger(), ({ db }) =>
    action === 'drop'
      ? reportDropped(context, dropDead(db, id!))
      : reportRetried(context, retryDead(db, id ?? 'dead', new Date())),
  );
}

function reportDropped(context: CommandContext, target: DeadTarget): number {
  context.print(`Dropped dead ${describeTarget(target)}; it will not be sent.`);
  return 0;
}

function reportRetried(context: CommandContext, targets: readonly DeadTarget[]): number {
  if (targets.length === 0) context.print('No dead notifications.');
  for (const target of targets) {
    context.print(`Retrying ${describeTarget(target)}: pending again, attempts reset; sent at the next delivery pass.`);
  }
  return 0;
}

/** The listing and the staleness state, from SQLite or (in one read-only transaction) Postgres. */
async function readOutbox(
  context: CommandContext,
  options: OutboxListingOptions,
): Promise<{ rows: OutboxListing[]; staleness: string | null }> {
  const target = context.config().database;
  if (target.kind === 'sqlite') {
    return withHistory(context, (db) =>
      Promise.resolve({ rows: listOutbox(db, options), staleness: readAlertState(db, STALENESS_KEY)?.value ?? null }),
    );
  }
  const { PgReadSession } = await import('../store/pg/read-session.ts');
  const session = await PgReadSession.open(target.url.reveal());
  try {
    const rows = await session.rows<OutboxListing>(listOutboxSql(options));
    const [state] = await session.rows<{ value: string }>(ALERT_STATE_SQL, {}, [STALENESS_KEY]);
    return { rows, staleness: state?.value ?? null };
  } finally {
    await session.close();
  }
}

export const alertsCommand: CommandSpec = {
  name: 'alerts',
  summary:
    'the webhook outbox (pending, delivered, dead notifications); `alerts retry ID|--dead`, `alerts drop ID` for dead ones',
  flags: ['db'],
  configure(command) {
    command
      .argument(
        '[action]',
        '`retry` (a dead notification back to pending, attempts reset) or `drop` (delete a dead one); none lists the outbox',
      )
      .argument('[id]', 'the notification id (first column of the listing)')
      .option('--pending', 'only the notifications not delivered yet')
      .option('--dead', 'only the dead notifications (given up); with `retry`: every dead one')
      .option('--last <n>', 'only the last N notifications');
    addQueryOptions(command, { filters: false });
  },
  async run(context) {
    const action = context.args[0];
    if (action !== undefined) {
      if (!(ACTIONS as readonly string[]).includes(action)) {
        throw new TierwatchError(
          'USAGE',
          `Unknown \`alerts\` action ${JSON.stringify(action)}: expected \`retry ID|--dead\` or \`drop ID\` (or none, to list).`,
        );
      }
      return actOnDead(context, action as (typeof ACTIONS)[number]);
    }
    const format = formatFrom(context);
    const last = integerOption(context.options.last, '--last', 1, 999_999_999);
    const pendingOnly = context.options.pending === true;
    const deadOnly = context.options.dead === true;
    const { rows, staleness: state } = await readOutbox(context, {
      pendingOnly,
      deadOnly,
      ...(last === undefined ? {} : { last }),
    });
    if (format !== 'table') {
      await writeRecords(context.io.stdout, format, rows, outboxShape);
      return 0;
    }
    const staleness = parseStalenessState(state);
    const pending = rows.filter((row) => row.status === 'pending').length;
    const dead = rows.filter((row) => row.status === 'dead').length;
    const footer = [
      `${pending} pending${dead > 0 ? `, ${dead} dead` : ''} of ${rows.length} shown.`,
      dead > 0
        ? 'Dead notifications are not sent again: `tierwatch alerts retry ID|--dead` or `tierwatch alerts drop ID` (on SQLite with the daemon stopped; on Postgres at any time).'
        : null,
      staleness?.state === 'stale' ? `Collection has been reported STALE since ${staleness.since}.` : null,
    ].filter((line) => line !== null);
    await writeText(context.io.stdout, `${alertsTable(rows, context.io.stdoutColumns)}${footer.join('\n')}\n`);
    return 0;
  },
};
