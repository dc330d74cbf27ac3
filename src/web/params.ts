/**
 * A query string read as the CLI reads its flags: `?since=…&account=a&account=b` is
 * `--since … --account a --account b`, with the same names (`include-baseline` for
 * `--include-baseline`), commas splitting repeatable values as they do on the command line, and the
 * last value winning when a single-valued flag is repeated (as commander does). An unknown parameter
 * is a USAGE error, as an unknown flag is.
 */
import { TierwatchError } from '../errors.ts';
import { collectValues } from '../output/query-command.ts';
import type { QueryOptions } from '../output/answers.ts';

/** How a parameter is read: one value, a repeatable list, or an on/off flag. */
export type ParamKind = 'value' | 'list' | 'flag';
export type ParamSpec = Readonly<Record<string, ParamKind>>;

const FILTERS = { account: 'list', symbol: 'list' } as const;

/** The parameters of each JSON answer: the CLI's flags of the same command (plus `format`). */
export const API_PARAMS = {
  changes: {
    since: 'value',
    until: 'value',
    only: 'list',
    change: 'list',
    'include-baseline': 'flag',
    ...FILTERS,
    format: 'value',
  },
  snapshot: { at: 'value', ...FILTERS, format: 'value' },
  diff: { from: 'value', to: 'value', ...FILTERS, format: 'value' },
  history: { account: 'list', format: 'value' },
  runs: { failed: 'flag', last: 'value', account: 'list', format: 'value' },
} as const satisfies Record<string, ParamSpec>;

const TRUE = new Set(['', '1', 'true', 'on', 'yes']);
const FALSE = new Set(['0', 'false', 'off', 'no']);

function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** The options record the CLI's commander would have built from the same flags. Throws USAGE. */
export function optionsFromQuery(search: URLSearchParams, spec: ParamSpec): QueryOptions {
  const options: QueryOptions = {};
  for (const name of new Set(search.keys())) {
    const kind = spec[name];
    if (kind === undefined) {
      const known = Object.keys(spec).join(', ');
      throw new TierwatchError('USAGE', `Unknown query parameter ${JSON.stringify(name)}; expected one of ${known}.`);
    }
    const values = search.getAll(name);
    if (kind === 'list') {
      const list = values.reduce<string[]>((all, value) => collectValues(value, all), []);
      if (list.length > 0) options[camelCase(name)] = list;
    } else if (kind === 'flag') {
      const value = values[values.length - 1]!.trim().toLowerCase();
      if (TRUE.has(value)) options[camelCase(name)] = true;
      else if (!FALSE.has(value)) {
        throw new TierwatchError(
          'USAGE',
          `Expected \`${name}\` to be true or false (or given without a value), got ${JSON.stringify(values[values.length - 1])}.`,
        );
      }
    } else {
      // An empty field of a GET form means "not given", not "the empty time".
      const value = values[values.length - 1]!.trim();
      if (value !== '') options[camelCase(name)] = value;
    }
  }
  return options;
}
