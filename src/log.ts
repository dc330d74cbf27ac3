/**
 * The only caller of pino(). Logs are JSON lines on stderr (stdout belongs to command output),
 * readable through pino-pretty when stderr is a terminal. Tests pass their own destination stream
 * and parse the lines.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

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
  const level = options.level ?? 'info';
  const usePretty = options.pretty ?? (options.destination === undefined && process.stderr.isTTY === true);
  const destination =
    options.destination ??
    (usePretty
      ? pretty({ destination: 2, colorize: true, translateTime: 'SYS:standard', ignore: 'pid,hostname', sync: true })
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
  return pino({ level: 'silent' });
}
