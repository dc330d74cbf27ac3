/** The output formats of the query commands and how one is chosen. */
import { optionText } from '../commands/options.ts';
import { TierwatchError } from '../errors.ts';

export const OUTPUT_FORMATS = ['table', 'json', 'ndjson', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * The format asked for with --format, or by default a table on a terminal and JSON otherwise (a
 * pipe or a file gets something a program can read). Throws USAGE for an unknown format.
 */
export function resolveFormat(value: unknown, stdoutIsTTY: boolean): OutputFormat {
  if (value === undefined || value === null) return stdoutIsTTY ? 'table' : 'json';
  const text = optionText(value).trim().toLowerCase();
  if ((OUTPUT_FORMATS as readonly string[]).includes(text)) return text as OutputFormat;
  throw new TierwatchError(
    'USAGE',
    `Expected \`--format\` to be one of ${OUTPUT_FORMATS.join(', ')}; got ${JSON.stringify(optionText(value))}.`,
  );
}
