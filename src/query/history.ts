/** Every version of one symbol's ladder (or of the symbols matching a pattern), over time. */
import { SQLITE, type SqlDialect } from './dialect.ts';
import { filterCondition, type Filters } from './filters.ts';
import { cachedStatement, type HistoryReader } from './reader.ts';
import { selectVersion, toVersionRow, type VersionRow } from './snapshot.ts';

/** The SQL of symbolHistory and its positional parameters (exported for the EXPLAIN test). */
export function historySql(
  symbol: string,
  filters: Filters,
  dialect: SqlDialect = SQLITE,
): { sql: string; params: string[] } {
  const filter = filterCondition(
    { accounts: filters.accounts, symbols: [symbol, ...(filters.symbols ?? [])] },
    { dialect },
  );
  const sql = `${selectVersion(dialect)} WHERE ${filter.sql} ORDER BY valid_from, account_id, symbol, leverage_value`;
  return { sql, params: filter.params };
}

/**
 * The versions of `symbol` (a name, or a pattern with `*`), ordered by valid_from, then account
 * and numeric leverage. A symbol that never existed gives an empty list, not an error.
 * `filters.accounts` narrows the accounts; `filters.symbols`, if given, adds more symbols.
 */
export function symbolHistory(db: HistoryReader, symbol: string, filters: Filters = {}): VersionRow[] {
  const { sql, params } = historySql(symbol, filters);
  return cachedStatement<Parameters<typeof toVersionRow>[0]>(db, sql)
    .all(...params)
    .map(toVersionRow);
}
