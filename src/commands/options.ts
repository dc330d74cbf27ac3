/**
 * Parsers for command options that commander leaves as strings. A bad value is a USAGE error
 * (exit 2) whose message names the flag and quotes what it got.
 */
import { checkDuration, type DurationLimits } from '../config.ts';
import { TierwatchError } from '../errors.ts';

/**
 * An option's value as the user typed it, for parsing and for error messages. Commander gives a
 * string (`true` for a flag given without its value, an array for a repeated variadic option):
 * anything but a string is shown as JSON rather than as `[object Object]`.
 */
export function optionText(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
}

/** A whole number from `min` to `max`, or undefined when the option was not given. */
export function integerOption(value: unknown, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const text = optionText(value);
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new TierwatchError(
      'USAGE',
      `Expected \`${flag}\` to be an integer from ${min} to ${max}, got ${JSON.stringify(text)}.`,
    );
  }
  return Number(text);
}

/**
 * A positive duration with its unit (500ms, 3s, 2m, …) in milliseconds, or undefined when the
 * option was not given. A bare number is refused: it once meant milliseconds, silently.
 */
export function durationOption(value: unknown, flag: string, limits: DurationLimits = {}): number | undefined {
  if (value === undefined) return undefined;
  return checkDuration(optionText(value), flag, limits, (message) => new TierwatchError('USAGE', message));
}
