/**
 * "Did you mean META-USD?": when a --symbol filter matches nothing, the symbols it would have
 * matched ignoring case. Symbols are case-sensitive identities (the exchange lists META-USD, never
 * meta-usd), so the filter itself stays exact; this only explains an empty answer.
 */
import { SQLITE, type SqlDialect } from './dialect.ts';
import type { Filters } from './filters.ts';
import { cachedStatement, type HistoryReader } from './reader.ts';

export const MAX_SUGGESTIONS = 5;

/**
 * The two questions behind a suggestion, with positional parameters: `exists` (pattern) whether
 * a pattern matches a symbol; `folded` (pattern, pattern, limit) the symbols it matches ignoring
 * ASCII case. On Postgres, lower() of the "C" collation folds ASCII only, as SQLite's does.
 */
export function suggestionSql(dialect: SqlDialect = SQLITE): { exists: string; folded: string } {
  return {
    exists: `SELECT 1 FROM tier_version WHERE ${dialect.matches('symbol')} LIMIT 1`,
    folded:
      `SELECT DISTINCT symbol FROM tier_version WHERE ${dialect.matches('lower(symbol)', dialect.lowerParam)} ` +
      `AND NOT ${dialect.matches('symbol')} ORDER BY symbol LIMIT ?`,
  };
}

/** The suggestions for each pattern, given how to ask the two questions (either backend). */
export async function suggestionsFor(
  filters: Filters,
  dialect: SqlDialect,
  exists: (pattern: string) => Promise<boolean>,
  folded: (pattern: string, limit: number) => Promise<string[]>,
): Promise<string[]> {
  const suggestions = new Set<string>();
  for (const pattern of filters.symbols ?? []) {
    const param = dialect.pattern(pattern);
    if (await exists(param)) continue;
    for (const symbol of await folded(param, MAX_SUGGESTIONS)) suggestions.add(symbol);
  }
  return [...suggestions].slice(0, MAX_SUGGESTIONS);
}

/**
 * For each pattern of `filters.symbols` that matches no symbol in the history, the symbols it
 * matches case-insensitively (at most five). Only asked after an empty answer: it reads every
 * distinct symbol.
 */
export function symbolSuggestions(db: HistoryReader, filters: Filters): string[] {
  const patterns = filters.symbols ?? [];
  if (patterns.length === 0) return [];
  const sql = suggestionSql();
  const exists = cachedStatement(db, sql.exists).pluck();
  const folded = cachedStatement<string>(db, sql.folded).pluck();
  const suggestions = new Set<string>();
  for (const pattern of patterns) {
    const glob = SQLITE.pattern(pattern);
    if (exists.get(glob) !== undefined) continue;
    for (const symbol of folded.all(glob, glob, MAX_SUGGESTIONS)) suggestions.add(symbol);
  }
  return [...suggestions].slice(0, MAX_SUGGESTIONS);
}

/** The note for an empty answer, or '' when there is nothing to suggest. */
export function symbolHint(db: HistoryReader, filters: Filters): string {
  return hintText(filters, symbolSuggestions(db, filters));
}

/** The note for an empty answer from the suggestions found, or '' when there are none. */
export function hintText(filters: Filters, suggestions: readonly string[]): string {
  if (suggestions.length === 0) return '';
  const given = (filters.symbols ?? []).join(', ');
  return `Nothing matches ${given}: symbols are case-sensitive. Did you mean ${suggestions.join(' or ')}?`;
}
