/**
 * `tierwatch query "SQL"`: one read-only statement against the views, in any output format.
 *
 * On SQLite the statement runs in a child process (query/sql-process.ts) that is killed on
 * --timeout, on SIGINT/SIGTERM, or when stdout's reader goes away: a runaway statement can neither
 * hang the command nor keep its read lock on the WAL, which would stop the daemon's checkpoints.
 * On Postgres it runs in a read-only transaction with a statement timeout (store/pg/query-run.ts),
 * under the same deadline and signals; the rows are written the same way.
 */
import { durationOption, optionText } from './options.ts';
import {
  DEFAULT_QUERY_TIMEOUT_MS,
  DEFAULT_QUERY_TIMEOUT_TEXT,
  runReadOnlyQuery,
  type QueryLimits,
  type QueryOutcome,
  type QuerySink,
} from '../query/sql-process.ts';
import { addQueryOptions, formatFrom } from '../output/query-command.ts';
import { jsonValue, RecordWriter, TableWriter, writeText, type RowWriter } from '../output/stream.ts';
import { queryShape } from '../output/shapes.ts';
import { lastSweepLine, TableStream, type TableColumn } from '../output/table.ts';
import { isTierwatchError } from '../errors.ts';
import { checkReadOnlyText } from '../query/readonly-sql.ts';
import type { CommandContext, CommandSpec } from './context.ts';

function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const json = jsonValue(value);
  return typeof json === 'string' ? json : String(json);
}

function cellsOf(row: unknown[]): string[] {
  return row.map(cellText);
}

/** Numbers read best right-aligned; a column is numeric when its first non-null value in the sample is. */
function tableColumns(names: readonly string[]): (sample: readonly unknown[][]) => TableColumn[] {
  return (sample) =>
    names.map((title, index) => ({
      title,
      align: typeof sample.find((row) => row[index] != null)?.[index] === 'number' ? 'right' : 'left',
    }));
}

/** The conventional exit status of a process stopped by a signal: 128 + its number. */
function signalExitCode(reason: unknown): number {
  return reason === 'SIGTERM' ? 143 : 130;
}

/** Logs that the statement is running; tests wait for this line before they send a signal. */
function logStarted(context: CommandContext, pid: number): void {
  // pino is loaded only when the line would be written.
  const level = context.config().logLevel;
  if (level === 'debug' || level === 'trace') {
    context.logger().debug({ command: 'query', query_pid: pid }, 'statement started');
  }
}

export const queryCommand: CommandSpec = {
  name: 'query',
  summary: 'run one read-only SQL statement against the views (runs, tier_versions, tiers_current, tier_changes)',
  flags: ['db'],
  configure(command) {
    command.argument('<sql>', 'a SELECT (or WITH, VALUES, EXPLAIN, read-only PRAGMA); writes are refused');
    command.option(
      '--timeout <duration>',
      `stop the statement after this long, e.g. 30s, 2m (default ${DEFAULT_QUERY_TIMEOUT_TEXT})`,
    );
    addQueryOptions(command, { filters: false });
  },
  async run(context) {
    const now = new Date();
    const format = formatFrom(context);
    const sql = context.args[0] ?? '';
    const timeoutText =
      context.options.timeout === undefined ? DEFAULT_QUERY_TIMEOUT_TEXT : optionText(context.options.timeout);
    const timeoutMs = durationOption(context.options.timeout, '--timeout') ?? DEFAULT_QUERY_TIMEOUT_MS;
    // Refused before anything starts: a write, a pragma that is not a read, several statements.
    checkReadOnlyText(sql);
    const target = context.config().database;
    const footer = format === 'table';
    const run = async (limits: QueryLimits, sink: QuerySink): Promise<QueryOutcome> => {
      if (target.kind === 'sqlite') return runReadOnlyQuery({ dbPath: target.path, sql, footer }, limits, sink);
      const { runPgQuery } = await import('../store/pg/query-run.ts');
      return runPgQuery({ url: target.url.reveal(), sql, footer }, limits, sink);
    };
    // A reader that goes away (`| head`) makes a write fail with EPIPE some time after write()
    // returned, possibly between two batches or after the last one: listen for the whole run, and
    // after it, so that it ends the output instead of crashing the process.
    let readerGone = false;
    context.io.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') readerGone = true;
      else throw error;
    });
    const limits = { timeoutMs, timeoutText, signal: context.io.signal };
    try {
      let writer: RowWriter<unknown[]> | undefined;
      const outcome = await run(limits, {
        async started(columns, pid) {
          // A table streams like the other formats: laid out from its first rows, fitted to the
          // terminal's width like every other table, then printed as the batches arrive.
          writer =
            format === 'table'
              ? new TableWriter(
                  context.io.stdout,
                  new TableStream(tableColumns(columns), cellsOf, '(no rows)', { width: context.io.stdoutColumns }),
                )
              : new RecordWriter(context.io.stdout, format, queryShape(columns));
          logStarted(context, pid);
          await writer.begin();
        },
        async rows(batch) {
          for (const row of batch) {
            if (readerGone || !writer!.open) return false;
            await writer!.add(row);
          }
          await writer!.flush();
          return !readerGone && writer!.open;
        },
      });
      if (outcome.complete && !readerGone) {
        await writer?.end();
        if (format === 'table') await writeText(context.io.stdout, `${lastSweepLine(outcome.lastObservedAt, now)}\n`);
      }
      return 0;
    } catch (error) {
      if (!isTierwatchError(error, 'ABORTED')) throw error;
      context.io.stderr.write(`tierwatch query: ${error.message}\n`);
      return signalExitCode(context.io.signal.reason);
    }
  },
};
