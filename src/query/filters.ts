/**
 * `--account` and `--symbol` filters: each a list of patterns where `*` (and only `*`) is a wildcard;
 * patterns of one list are ORed, the two lists are ANDed. An empty list matches everything.
 *
 * A pattern without `*` becomes an equality (so the symbol indexes serve it); a pattern with `*`
 * becomes a GLOB in which every other GLOB metacharacter (`?`, `[`, `]`) is bracket-escaped, so
 * `US_100` or `A?B` match only themselves. GLOB, unlike LIKE, is case-sensitive and gives `_` and
 * `%` no meaning, as identities need. Values are always bound parameters, never spliced into SQL.
 */
import { SQLITE, toGlob, type SqlDialect } from './dialect.ts';

export { toGlob };

export interface Filters {
  accounts?: readonly string[];
  symbols?: readonly string[];
}

export interface SqlFragment {
  /** SQL to AND into a WHERE clause ('1' when there is nothing to filter). */
  sql: string;
  params: string[];
}

/** Whether `value` matches `pattern` (`*` = any run of characters, everything else literal). */
export function matchesPattern(pattern: string, value: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*');
  return new RegExp(`^${source}$`).test(value);
}

/**
 * The condition "column matches one of the patterns". `column` is trusted SQL (a column name). On
 * Postgres a pattern with `*` is a LIKE (src/query/dialect.ts), with the same meaning.
 */
export function patternCondition(
  column: string,
  patterns: readonly string[] | undefined,
  dialect: SqlDialect = SQLITE,
): SqlFragment {
  if (patterns === undefined || patterns.length === 0) return { sql: dialect.always, params: [] };
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
    parts.push(dialect.matches(column));
    params.push(dialect.pattern(pattern));
  }
  return { sql: parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`, params };
}

/**
 * Both filters as one condition over the columns account_id and symbol. With `indexable: false`
 * the columns are written `+account_id`/`+symbol`, which keeps SQLite from choosing an index on
 * them: a query whose best index is on time must not be lured onto an account or symbol index
 * that would read every row of that account (or of a symbol prefix) across all of history.
 */
export function filterCondition(
  filters: Filters,
  options: { indexable?: boolean; dialect?: SqlDialect } = {},
): SqlFragment {
  const dialect = options.dialect ?? SQLITE;
  const column = (name: string) => (options.indexable === false ? dialect.unindexed(name) : name);
  const account = patternCondition(column('account_id'), filters.accounts, dialect);
  const symbol = patternCondition(column('symbol'), filters.symbols, dialect);
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
