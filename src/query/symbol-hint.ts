/**
 * "Did you mean META-USD?": when a --symbol filter matches nothing, the symbols it would have
 * matched ignoring case. Symbols are case-sensitive identities (the exchange lists META-USD, never
 * meta-usd), so the filter itself stays exact; this only explains an empty answer.
 */
import { toGlob, type Filters } from './filters.ts';
import { cachedStatement, type HistoryReader } from './reader.ts';

const MAX_SUGGESTIONS = 5;

/**
 * For each pattern of `filters.symbols` that matches no symbol in the history, the symbols it
 * matches case-insensitively (at most five). Only asked after an empty answer: it reads every
 * distinct symbol.
 */
export function symbolSuggestions(db: HistoryReader, filters: Filters): string[] {
  const patterns = filters.symbols ?? [];
  if (patterns.length === 0) return [];
  const exists = cachedStatement(db, 'SELECT 1 FROM tier_version WHERE symbol GLOB ? LIMIT 1').pluck();
  const folded = cachedStatement<string>(
    db,
    'SELECT DISTINCT symbol FROM tier_version WHERE lower(symbol) GLOB lower(?) AND symbol NOT GLOB ? ORDER BY symbol LIMIT ?',
  ).pluck();
  const suggestions = new Set<string>();
  for (const pattern of patterns) {
    const glob = toGlob(pattern);
    if (exists.get(glob) !== undefined) continue;
    for (const symbol of folded.all(glob, glob, MAX_SUGGESTIONS)) suggestions.add(symbol);
  }
  return [...suggestions].slice(0, MAX_SUGGESTIONS);
}

/** The note for an empty answer, or '' when there is nothing to suggest. */
export function symbolHint(db: HistoryReader, filters: Filters): string {
  const suggestions = symbolSuggestions(db, filters);
  if (suggestions.length === 0) return '';
  const given = (filters.symbols ?? []).join(', ');
  return `Nothing matches ${given}: symbols are case-sensitive. Did you mean ${suggestions.join(' or ')}?`;
}
