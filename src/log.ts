/**
 * The only caller of pino(). Logs are JSON lines on stderr (stdout belongs to command output),
 * readable through pino-pretty when stderr is a terminal. Tests pass their own destination stream
 * and parse the lines.
 *
 * pino is loaded on the first logger, and pino-pretty only for a terminal: `tierwatch --version`
 * needs neither, and a daemon whose stderr is a pipe (Docker, systemd) never loads pino-pretty.
 */
import { createRequire } from 'node:module';
import type { pino as PinoFactory, DestinationStream, Logger, LevelWithSilent } from 'pino';
import type PrettyFactory from 'pino-pretty';

const requireLazily = createRequire(import.meta.url);
const loadPino = (): typeof PinoFactory => (requireLazily('pino') as { pino: typeof PinoFactory }).pino;
const loadPretty = (): typeof PrettyFactory => (requireLazily('pino-pretty') as { default: typeof PrettyFactory }).default;

export type { Logger } from 'pino';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Paths that may hold a secret, censored wherever they appear. A secret should never reach a log
 * call in the first place; this is the second line of defence.
 */
const REDACT_PATHS = [
  'secret',
  'secretKey',
  'secret_key',
  'signature',
  'jwt',
  'token',
  'password',
  '*.secret',
  '*.secretKey',
  '*.secret_key',
  '*.signature',
  '*.jwt',
  '*.token',
  '*.password',
  'params.hmac.signature',
  '*.params.hmac.signature',
  'params.jwt',
  '*.params.jwt',
];

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where lines go; stderr by default. */
  destination?: DestinationStream;
  /** Human-readable lines; by default when stderr is a terminal and no destination is given. */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const pino = loadPino();
  const level = options.level ?? 'info';
  const usePretty = options.pretty ?? (options.destination === undefined && process.stderr.isTTY === true);
  const destination =
    options.destination ??
    (usePretty
      ? loadPretty()({ destination: 2, colorize: true, translateTime: 'SYS:standard', ignore: 'pid,hostname', sync: true })
      : pino.destination({ dest: 2, sync: true }));
  return pino(
    {
      level,
      base: { service: 'tierwatch' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A logger that writes nothing, for library code called without one. */
export function silentLogger(): Logger {
  return loadPino()({ level: 'silent' });
}
