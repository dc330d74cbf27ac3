/**
 * `--account` and `--symbol` filters: each a list of patterns where `*` (and only `*`) is a wildcard;
 * patterns of one list are ORed, the two lists are ANDed. An empty list matches everything.
 *
 * A pattern without `*` becomes an equality (so the symbol indexes serve it); a pattern with `*`
 * becomes a GLOB in which every other GLOB metacharacter (`?`, `[`, `]`) is bracket-escaped, so
 * `US_100` or `A?B` match only themselves. GLOB, unlike LIKE, is case-sensitive and gives `_` and
 * `%` no meaning, as identities need. Values are always bound parameters, never spliced into SQL.
 */

export interface Filters {
  accounts?: readonly string[];
  symbols?: readonly string[];
}

export interface SqlFragment {
  /** SQL to AND into a WHERE clause ('1' when there is nothing to filter). */
  sql: string;
  params: string[];
}

/** The GLOB pattern matching `pattern` with `*` as the only wildcard. */
export function toGlob(pattern: string): string {
  return pattern.replace(/[?[\]]/g, (character) => `[${character}]`);
}

/** Whether `value` matches `pattern` (`*` = any run of characters, everything else literal). */
export function matchesPattern(pattern: string, value: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*');
  return new RegExp(`^${source}$`).test(value);
}

/** The condition "column matches one of the patterns". `column` is trusted SQL (a column name). */
export function patternCondition(column: string, patterns: readonly string[] | undefined): SqlFragment {
  if (patterns === undefined || patterns.length === 0) return { sql: '1', params: [] };
  const exact = [...new Set(patterns.filter((pattern) => !pattern.includes('*')))];
  const wild = [...new Set(patterns.filter((pattern) => pattern.includes('*')))];
  const parts: string[] = [];
  const params: string[] = [];
  if (exact.length === 1) {
    parts.push(`${column} = ?`);
    params.push(exact[0]!);
  } else if (exact.length > 1) {
    parts.push(`${column} IN (${exact.map(() => '?').join(', ')})`);
    params.push(...exact);
  }
  for (const pattern of wild) {
    parts.push(`${column} GLOB ?`);
    params.push(toGlob(pattern));
  }
  return { sql: parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`, params };
}

/**
 * Both filters as one condition over the columns account_id and symbol. With `indexable: false`
 * the columns are written `+account_id`/`+symbol`, which keeps SQLite from choosing an index on
 * them: a query whose best index is on time must not be lured onto an account or symbol index
 * that would read every row of that account (or of a symbol prefix) across all of history.
 */
export function filterCondition(filters: Filters, options: { indexable?: boolean } = {}): SqlFragment {
  const prefix = options.indexable === false ? '+' : '';
  const account = patternCondition(`${prefix}account_id`, filters.accounts);
  const symbol = patternCondition(`${prefix}symbol`, filters.symbols);
  return { sql: `${account.sql} AND ${symbol.sql}`, params: [...account.params, ...symbol.params] };
}

/** True when the symbol filter names exact symbols only (no wildcard): an index on symbol serves it. */
export function hasExactSymbolsOnly(filters: Filters): boolean {
  return (
    filters.symbols !== undefined &&
    filters.symbols.length > 0 &&
    filters.symbols.every((pattern) => !pattern.includes('*'))
  );
}
