/**
 * The command line: parses arguments with commander, hands each command a context, and is the one
 * place where errors become exit codes (0 ok, 1 failed, 2 bad usage or configuration).
 */
import { Command, CommanderError, Option } from 'commander';
import { coerceError, exitCodeFor, type TierwatchError } from './errors.ts';
import { sqliteErrorToTierwatch } from './store/sqlite-errors.ts';
import { packageVersion } from './paths.ts';
import { COMMANDS } from './commands/index.ts';
import { createContext, type CliIo, type CommandSpec } from './commands/context.ts';

export type { CliIo } from './commands/context.ts';

function addSharedFlags(command: Command, spec: CommandSpec): void {
  const groups = spec.flags ?? [];
  if (groups.includes('db')) {
    command.option('--db <path>', 'SQLite database file (env TIERWATCH_DB, default ./data/tierwatch.db)');
  }
  if (groups.includes('exchange')) {
    command
      .option('--url <url>', 'QFEX trade WebSocket URL (env QFEX_WS_URL, default wss://trade.qfex.com)')
      .option(
        '--public-key <key>',
        'QFEX public API key (env QFEX_PUBLIC_KEY); the secret comes only from QFEX_SECRET_KEY or QFEX_SECRET_KEY_FILE',
      )
      .option(
        '--accounts <ids>',
        'comma-separated `primary` and/or subaccount ids (env QFEX_ACCOUNT_IDS, default primary)',
      )
      .option('--ca-file <path>', 'extra trusted certificate authority, PEM (env QFEX_CA_FILE)')
      .option('--page-size <n>', 'tiers asked for per page, 1 to 1000 (env TIERWATCH_PAGE_SIZE, default 1000)')
      .option('--max-pages <n>', 'pages after which a sweep fails loudly (env TIERWATCH_MAX_PAGES, default 10000)');
  }
  if (groups.includes('schedule')) {
    command.option(
      '--schedule <cron>',
      'cron schedule, UTC, seconds field allowed (env TIERWATCH_SCHEDULE, default */5 * * * *)',
    );
  }
  if (groups.length > 0) {
    command.addOption(
      new Option('--log-level <level>', 'log level (env LOG_LEVEL, default info)').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    );
  }
}

function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('tierwatch')
    .description('Keeps a queryable history of QFEX leverage tiers in SQLite.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });

  for (const spec of COMMANDS) {
    const command = program.command(spec.name).description(spec.summary).helpOption('-h, --help', 'show help');
    spec.configure?.(command);
    addSharedFlags(command, spec);
    command.exitOverride();
    command.action(async (...received: unknown[]) => {
      // commander passes the positional arguments, then the options object, then the command.
      const self = received.at(-1) as Command;
      const args = self.args;
      const context = createContext(io, self.opts(), args);
      setExitCode(await runCommand(spec, context));
    });
  }
  return program;
}

async function runCommand(spec: CommandSpec, context: ReturnType<typeof createContext>): Promise<number> {
  try {
    return await spec.run(context);
  } catch (thrown) {
    // A SQLite error that reached this far (a corrupt page met by a query, a full disk) still gets its code.
    const error = sqliteErrorToTierwatch(thrown, 'reading or writing the database') ?? coerceError(thrown);
    const message = `tierwatch ${spec.name}: ${error.message}${error.code === 'INTERNAL' ? ' (this is a bug)' : ''}`;
    if (spec.name === 'run' && context.io.stderrIsTTY !== true && logsFailure(context, error, thrown, message)) {
      return exitCodeFor(error);
    }
    context.io.stderr.write(`${message}\n`);
    if (error.code === 'INTERNAL') {
      try {
        context.logger().error({ err: thrown }, 'unexpected error');
      } catch {
        /* the message above is enough */
      }
    }
    return exitCodeFor(error);
  }
}

/**
 * The daemon's stderr is a log stream (Docker, systemd, a shipper): when it is not a terminal, a
 * start-up failure is a JSON log line like every other line. False when the logger cannot say it
 * (LOG_LEVEL=silent): then the plain line is written, since a daemon that fails must say why.
 */
function logsFailure(
  context: ReturnType<typeof createContext>,
  error: TierwatchError,
  thrown: unknown,
  message: string,
): boolean {
  try {
    const logger = context.logger();
    if (!logger.isLevelEnabled('fatal')) return false;
    logger.fatal({ code: error.code, ...(error.code === 'INTERNAL' ? { err: thrown } : {}) }, message);
    return true;
  } catch {
    return false;
  }
}

/** Runs the CLI with the given arguments (without node and script) and returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  if (argv.length === 0) {
    program.outputHelp();
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (thrown) {
    if (thrown instanceof CommanderError) {
      // Help and version end with a zero code; every other parse failure is bad usage.
      return thrown.exitCode === 0 ? 0 : 2;
    }
    throw thrown;
  }
  return exitCode;
}
