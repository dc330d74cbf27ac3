/**
 * The two SQL dialects the read queries are written in. The questions (which rows, which filters,
 * which order) are built once, in src/query/*.ts; only these spellings differ between SQLite and
 * Postgres:
 * - a pattern with `*`: SQLite's GLOB (case-sensitive, `*` and `?` wild, `[...]` a class), Postgres'
 *   LIKE on a `COLLATE "C"` column (case-sensitive, `%` and `_` wild, `\` escapes);
 * - SQLite's unary `+` that keeps its planner off an index (Postgres' planner needs no such hint);
 * - "no condition": SQLite's `1`, Postgres' `TRUE` (an integer is no boolean there);
 * - the cast of a leverage to a number, and where NULLs sort (first on SQLite; Postgres says so).
 * Values are always bound parameters written `?` (positional) or `@name`; the Postgres session
 * renumbers them to `$n` (src/store/pg/read-session.ts).
 */

export interface SqlDialect {
  readonly name: 'sqlite' | 'postgres';
  /** A condition that is always true. */
  readonly always: string;
  /** `column` matching a pattern parameter (`?`, or the expression `param`), as made by `pattern`. */
  matches(column: string, param?: string): string;
  /** A text parameter in lower case, ASCII letters only (as SQLite's lower()). */
  readonly lowerParam: string;
  /** The parameter for `matches` from a pattern where `*` is the only wildcard. */
  pattern(text: string): string;
  /** `column` written so that the planner does not choose an index on it. */
  unindexed(column: string): string;
  /** The SQL type a leverage is cast to, for numeric order. */
  readonly double: string;
  /** ` NULLS FIRST` where ascending order would not put NULLs first by itself, else ''. */
  readonly nullsFirst: string;
}

/** The GLOB pattern matching `pattern` with `*` as the only wildcard. */
export function toGlob(pattern: string): string {
  return pattern.replace(/[?[\]]/g, (character) => `[${character}]`);
}

/** The LIKE pattern (escape `\`) matching `pattern` with `*` as the only wildcard. */
export function toLike(pattern: string): string {
  return pattern.replace(/[\\%_]/g, (character) => `\\${character}`).replace(/\*/g, '%');
}

export const SQLITE: SqlDialect = {
  name: 'sqlite',
  always: '1',
  matches: (column, param = '?') => `${column} GLOB ${param}`,
  lowerParam: 'lower(?)',
  pattern: toGlob,
  unindexed: (column) => `+${column}`,
  double: 'REAL',
  nullsFirst: '',
};

export const POSTGRES: SqlDialect = {
  name: 'postgres',
  always: 'TRUE',
  matches: (column, param = '?') => `${column} LIKE ${param}`,
  // The "C" collation's lower() folds ASCII only, as SQLite's does.
  lowerParam: 'lower(CAST(? AS text) COLLATE "C")',
  pattern: toLike,
  unindexed: (column) => column,
  double: 'double precision',
  nullsFirst: ' NULLS FIRST',
};
