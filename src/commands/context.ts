/**
 * What every command receives: its streams, its environment, the shutdown signal, and lazily built
 * configuration and logger. Commands return an exit code and never call process.exit(), so output
 * written to a pipe is never cut short.
 */
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { DestinationStream } from 'pino';
import { loadConfigChecked, type Config, type Overrides } from '../config.ts';
import { describeUnknown } from '../config-names.ts';
import { createLogger, noColor, type Logger } from '../log.ts';

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: Record<string, string | undefined>;
  /** Whether stdout is a terminal: chooses table output over JSON. */
  stdoutIsTTY: boolean;
  /** The terminal's width when stdout is one (tables are fitted to it); undefined otherwise. */
  stdoutColumns?: number | undefined;
  /** Whether stderr is a terminal: human log lines there, JSON lines otherwise. */
  stderrIsTTY?: boolean;
  /** Aborted on the first SIGINT/SIGTERM (or by a test); its reason is then the signal's name. */
  signal: AbortSignal;
  /** Where logs go; stderr when absent. Tests pass a capturing stream. */
  logDestination?: DestinationStream;
}

export interface CommandContext {
  io: CliIo;
  /** The command's options as parsed by commander (flags override the environment). */
  options: Record<string, unknown>;
  /** Positional arguments. */
  args: string[];
  config(): Config;
  logger(): Logger;
  /** Writes a line to stdout. */
  print(line: string): void;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Adds the command's arguments and options (the shared flags are added for it). */
  configure?: (command: Command) => void;
  /** Which shared flag groups it takes. */
  flags?: Array<'db' | 'exchange' | 'schedule'>;
  run: (context: CommandContext) => Promise<number>;
}

/** Command-line flags that override environment variables, by option name. */
export const FLAG_TO_VARIABLE: Record<string, { variable: string; flag: string }> = {
  db: { variable: 'TIERWATCH_DB', flag: '--db' },
  url: { variable: 'QFEX_WS_URL', flag: '--url' },
  publicKey: { variable: 'QFEX_PUBLIC_KEY', flag: '--public-key' },
  accounts: { variable: 'QFEX_ACCOUNT_IDS', flag: '--accounts' },
  caFile: { variable: 'QFEX_CA_FILE', flag: '--ca-file' },
  pageSize: { variable: 'TIERWATCH_PAGE_SIZE', flag: '--page-size' },
  maxPages: { variable: 'TIERWATCH_MAX_PAGES', flag: '--max-pages' },
  schedule: { variable: 'TIERWATCH_SCHEDULE', flag: '--schedule' },
  logLevel: { variable: 'LOG_LEVEL', flag: '--log-level' },
};

export function overridesFrom(options: Record<string, unknown>): Overrides {
  const overrides: Overrides = {};
  for (const [option, target] of Object.entries(FLAG_TO_VARIABLE)) {
    const value = options[option];
    if (typeof value === 'string') overrides[target.variable] = { value, flag: target.flag };
  }
  return overrides;
}

export function createContext(io: CliIo, options: Record<string, unknown>, args: string[]): CommandContext {
  let config: Config | undefined;
  let logger: Logger | undefined;
  const context: CommandContext = {
    io,
    options,
    args,
    config() {
      if (config === undefined) {
        const checked = loadConfigChecked(io.env, overridesFrom(options));
        config = checked.config;
        // Once per command, at start: a misspelt setting otherwise falls back to its default unseen.
        for (const unknown of checked.unknown) {
          context
            .logger()
            .warn({ variable: unknown.variable, suggestion: unknown.suggestion }, describeUnknown(unknown));
        }
      }
      return config;
    },
    logger() {
      if (logger === undefined) {
        // A bad LOG_LEVEL must not stop the error about it from being logged.
        let level: Config['logLevel'] = 'info';
        try {
          level = context.config().logLevel;
        } catch {
          /* reported by whoever asks for the config */
        }
        // Human lines only on a terminal; JSON lines everywhere else (a pipe, a file, a test's capture).
        const terminal = io.stderrIsTTY ?? (io.logDestination === undefined && process.stderr.isTTY === true);
        logger = createLogger({
          level,
          pretty: terminal,
          color: terminal && !noColor(io.env),
          ...(io.logDestination === undefined ? {} : { destination: io.logDestination }),
        });
      }
      return logger;
    },
    print(line: string) {
      io.stdout.write(`${line}\n`);
    },
  };
  return context;
}
