/**
 * The only caller of pino(). Logs go to stderr (stdout belongs to command output): one JSON object
 * per line whenever stderr is not a terminal (a log shipper reads every line as JSON), and one
 * human line per event on a terminal (UTC time, level, message, fields; coloured unless NO_COLOR).
 * Field names are snake_case, as in the database: `run_id`, `account_id`, `observed_at`.
 * Tests pass their own destination stream and parse the lines.
 *
 * pino is loaded on the first logger: `tierwatch --version` does not need it.
 */
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { pino as PinoFactory, DestinationStream, Logger, LevelWithSilent } from 'pino';
import { escapeControl } from './output/terminal-text.ts';

const requireLazily = createRequire(import.meta.url);
const loadPino = (): typeof PinoFactory => (requireLazily('pino') as { pino: typeof PinoFactory }).pino;

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
  /** Colour in human-readable lines; by default unless NO_COLOR is set (https://no-color.org). */
  color?: boolean;
}

/** Whether NO_COLOR asks for no colour: set to anything but the empty string. */
export function noColor(env: Record<string, string | undefined>): boolean {
  return (env.NO_COLOR ?? '') !== '';
}

const LEVEL_COLOURS: Record<string, string> = {
  fatal: '\u001b[35m',
  error: '\u001b[31m',
  warn: '\u001b[33m',
  info: '\u001b[32m',
  debug: '\u001b[90m',
  trace: '\u001b[90m',
};
const PLAIN_VALUE = /^[\w.:/@+-]+$/;
/** Fields every line has, shown in the line's head rather than as key=value. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'service']);

/** A log field as text: a string as it is, anything else (a number, say) as JSON. */
function fieldText(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
}

/**
 * One JSON log line as a human line: `2026-11-24T12:00:00.000Z WARN  message key=value …`, the
 * time in UTC as in the JSON. Every string passes through escapeControl: a value from the exchange
 * cannot move the cursor or retitle the terminal, and a stack's newlines stay on the one line.
 */
export function prettyLine(json: string, color: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return `${escapeControl(json.trimEnd())}\n`;
  }
  const level = fieldText(entry.level ?? 'info');
  const label = level.toUpperCase().padEnd(5);
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD_FIELDS.has(key))
    .map(
      ([key, value]) =>
        `${key}=${typeof value === 'string' && PLAIN_VALUE.test(value) ? value : JSON.stringify(value)}`,
    );
  const text = escapeControl([fieldText(entry.time ?? ''), label, fieldText(entry.msg ?? ''), ...fields].join(' '));
  if (!color) return `${text}\n`;
  const colour = LEVEL_COLOURS[level] ?? '';
  const time = fieldText(entry.time ?? '').length;
  return `\u001b[2m${text.slice(0, time)}\u001b[22m ${colour}${label}\u001b[39m${text.slice(time + 1 + label.length)}\n`;
}

/** A destination that turns pino's JSON lines into human lines before writing them. */
function prettyDestination(target: DestinationStream | undefined, color: boolean): DestinationStream {
  return {
    write(line: string) {
      const text = prettyLine(line, color);
      if (target === undefined) writeSync(2, text);
      else target.write(text);
    },
  };
}

/**
 * A log event written without a logger (a signal, or a failure before the command made one), in the
 * same shape as the logger's lines: JSON, or a human line on a terminal.
 */
export function eventLine(
  level: 'fatal' | 'error' | 'warn' | 'info',
  msg: string,
  fields: Record<string, unknown>,
  human: { pretty: boolean; color: boolean },
): string {
  const json = JSON.stringify({ level, time: new Date().toISOString(), service: 'tierwatch', ...fields, msg });
  return human.pretty ? prettyLine(json, human.color) : `${json}\n`;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const pino = loadPino();
  const level = options.level ?? 'info';
  const usePretty = options.pretty ?? (options.destination === undefined && process.stderr.isTTY === true);
  const color =
    options.color ?? (!noColor(process.env) && options.destination === undefined && process.stderr.isTTY === true);
  const destination = usePretty
    ? prettyDestination(options.destination, color)
    : (options.destination ?? pino.destination({ dest: 2, sync: true }));
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

/** `value` with every object key in snake_case (`publicKey` → `public_key`), for objects built for other uses. */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key.replace(/[A-Z]/g, (upper) => `_${upper.toLowerCase()}`),
      snakeCaseKeys(inner),
    ]),
  );
}

/** A logger that writes nothing, for library code called without one. */
export function silentLogger(): Logger {
  return loadPino()({ level: 'silent' });
}
