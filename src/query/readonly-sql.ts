/**
 * The guard of `tierwatch query`: only plain reads get through.
 *
 * A read-only connection is not enough on its own: ATTACH can create and write another file,
 * VACUUM INTO writes a copy anywhere, and some pragmas change the connection or the file. So every
 * statement of the input is checked twice: its first keyword must be one of SELECT, WITH, VALUES,
 * EXPLAIN or PRAGMA (and a PRAGMA must be a read of an allow-listed one, with no `=`), and SQLite
 * itself must call the compiled statement read-only (`stmt.readonly`, sqlite3_stmt_readonly), which
 * catches `WITH … DELETE` and anything the keyword check cannot see.
 *
 * Pragmas are also reachable as table-valued functions (`SELECT * FROM pragma_optimize`), and a
 * function's argument, given in parentheses or as `WHERE arg = …`, runs the pragma's SET form. So
 * every `pragma_*` name in the statement must be on a shorter list of pragmas that have no SET form
 * or whose argument only names what to report on. SQLite calls such a statement read-only even
 * when it writes (pragma_optimize runs ANALYZE): the read-only open and `query_only` stop it too,
 * but the guard refuses it first, with a message that says why.
 */
import type Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';
import { sqliteErrorCode, toStoreError } from '../store/sqlite-errors.ts';

/** Pragmas that only report something, called without an argument. */
const READ_PRAGMAS = new Set([
  'application_id',
  'auto_vacuum',
  'collation_list',
  'compile_options',
  'data_version',
  'database_list',
  'encoding',
  'foreign_key_check',
  'foreign_keys',
  'freelist_count',
  'function_list',
  'integrity_check',
  'journal_mode',
  'module_list',
  'page_count',
  'page_size',
  'pragma_list',
  'query_only',
  'quick_check',
  'schema_version',
  'table_list',
  'user_version',
]);
/** Pragmas that only report something about their argument: PRAGMA table_info(runs). */
const READ_PRAGMAS_WITH_ARGUMENT = new Set([
  'foreign_key_check',
  'foreign_key_list',
  'index_info',
  'index_list',
  'index_xinfo',
  'integrity_check',
  'quick_check',
  'table_info',
  'table_list',
  'table_xinfo',
]);
/**
 * Pragmas allowed as table-valued functions (`pragma_table_info('runs')`): those whose argument
 * names a table or index to report on, and those that report without taking one. Not the ones with
 * a SET form (`pragma_user_version(5)` would set it).
 */
const READ_PRAGMA_FUNCTIONS = new Set([
  ...READ_PRAGMAS_WITH_ARGUMENT,
  'collation_list',
  'compile_options',
  'data_version',
  'database_list',
  'freelist_count',
  'function_list',
  'module_list',
  'pragma_list',
]);
const READ_KEYWORDS = new Set(['SELECT', 'WITH', 'VALUES', 'EXPLAIN', 'PRAGMA']);

export const ALLOWED_STATEMENTS =
  'SELECT, WITH … SELECT, VALUES, EXPLAIN, and read-only PRAGMAs (table_info(…), index_list(…), user_version, …)';

/** One statement of the input: its text, and the same text with comments blanked out. */
export interface SqlPiece {
  text: string;
  code: string;
}

/**
 * Splits SQL text into statements at top-level semicolons, respecting '…' strings, "…", `…` and
 * […] identifiers, -- and /* *\/ comments. Pieces that hold only whitespace and comments are dropped.
 */
export function splitStatements(sql: string): SqlPiece[] {
  const pieces: SqlPiece[] = [];
  let text = '';
  let code = '';
  let index = 0;
  const flush = (): void => {
    if (code.trim() !== '') pieces.push({ text: text.trim(), code: code.trim() });
    text = '';
    code = '';
  };
  while (index < sql.length) {
    const character = sql[index]!;
    const next = sql[index + 1];
    if (character === ';') {
      flush();
      index++;
      continue;
    }
    if (character === '-' && next === '-') {
      const end = sql.indexOf('\n', index);
      const stop = end === -1 ? sql.length : end;
      text += sql.slice(index, stop);
      code += ' ';
      index = stop;
      continue;
    }
    if (character === '/' && next === '*') {
      const end = sql.indexOf('*/', index + 2);
      const stop = end === -1 ? sql.length : end + 2;
      text += sql.slice(index, stop);
      code += ' ';
      index = stop;
      continue;
    }
    const closer =
      character === "'" ? "'" : character === '"' ? '"' : character === '`' ? '`' : character === '[' ? ']' : null;
    if (closer !== null) {
      let stop = index + 1;
      for (;;) {
        const end = sql.indexOf(closer, stop);
        if (end === -1) {
          stop = sql.length;
          break;
        }
        // A doubled quote inside a quoted string or identifier is an escaped quote, not its end.
        if (closer !== ']' && sql[end + 1] === closer) {
          stop = end + 2;
          continue;
        }
        stop = end + 1;
        break;
      }
      text += sql.slice(index, stop);
      code += sql.slice(index, stop);
      index = stop;
      continue;
    }
    text += character;
    code += character;
    index++;
  }
  flush();
  return pieces;
}

function refuse(piece: SqlPiece, why: string): TierwatchError {
  const shown = piece.text.length > 80 ? `${piece.text.slice(0, 77)}…` : piece.text;
  return new TierwatchError(
    'USAGE',
    `Refused ${JSON.stringify(shown)}: ${why}. \`tierwatch query\` runs one read-only statement: ${ALLOWED_STATEMENTS}.`,
  );
}

/** Checks the keyword and pragma rules on one piece; throws USAGE when it is not a plain read. */
function checkKeyword(piece: SqlPiece): void {
  const keyword = /^[A-Za-z]+/.exec(piece.code)?.[0]?.toUpperCase() ?? '';
  if (!READ_KEYWORDS.has(keyword)) {
    throw refuse(piece, keyword ? `${keyword} is not a read` : 'it is not a statement that reads');
  }
  if (keyword !== 'PRAGMA') return;
  const pragma = /^PRAGMA\s+(?:(?:[A-Za-z_]\w*|"[^"]*"|`[^`]*`|\[[^\]]*\])\s*\.\s*)?([A-Za-z_]\w*)\s*(=|\()?/i.exec(
    piece.code,
  );
  if (!pragma) throw refuse(piece, 'this PRAGMA could not be read');
  const name = pragma[1]!.toLowerCase();
  const form = pragma[2];
  if (form === '=') throw refuse(piece, `PRAGMA ${name} = … changes a setting`);
  const allowed = form === '(' ? READ_PRAGMAS_WITH_ARGUMENT.has(name) : READ_PRAGMAS.has(name);
  if (!allowed) {
    throw refuse(piece, `PRAGMA ${name}${form === '(' ? '(…)' : ''} is not on the list of read-only pragmas`);
  }
}

/**
 * The identifiers of a statement's code (comments already blanked), unquoted: bare words and
 * "…", `…` and […] names. String literals are data, not names, and are skipped.
 */
export function identifiersOf(code: string): string[] {
  const names: string[] = [];
  const token = /'(?:[^']|'')*'?|"((?:[^"]|"")*)"?|`((?:[^`]|``)*)`?|\[([^\]]*)\]?|([A-Za-z_][\w$]*)/g;
  for (const match of code.matchAll(token)) {
    const name = match[1]?.replaceAll('""', '"') ?? match[2]?.replaceAll('``', '`') ?? match[3] ?? match[4];
    if (name !== undefined) names.push(name);
  }
  return names;
}

/** Refuses a `pragma_*` table-valued function that is not on READ_PRAGMA_FUNCTIONS. */
function checkPragmaFunctions(piece: SqlPiece): void {
  for (const name of identifiersOf(piece.code)) {
    const lower = name.toLowerCase();
    if (!lower.startsWith('pragma_')) continue;
    const pragma = lower.slice('pragma_'.length);
    if (!READ_PRAGMA_FUNCTIONS.has(pragma)) {
      throw refuse(piece, `${name} runs PRAGMA ${pragma}, which is not on the list of read-only pragmas`);
    }
  }
}

/**
 * The checks that need no database: the input holds at least one statement, and every statement's
 * keyword, pragma and `pragma_*` functions are reads. Throws TierwatchError('USAGE') with the reason;
 * returns the statements. `tierwatch query` runs it before it starts anything.
 */
export function checkReadOnlyText(sql: string): SqlPiece[] {
  const pieces = splitStatements(sql);
  if (pieces.length === 0) {
    throw new TierwatchError('USAGE', 'Give a statement to run, e.g. tierwatch query "SELECT * FROM runs LIMIT 5".');
  }
  for (const piece of pieces) {
    checkKeyword(piece);
    checkPragmaFunctions(piece);
  }
  return pieces;
}

/**
 * Prepares `sql` for reading, or throws TierwatchError('USAGE') with the reason: empty input, a
 * statement that is not a plain read (checked for every statement of the input, before anything
 * runs), more than one statement, or a syntax error. The result is the one statement to run.
 */
export function prepareReadOnly(sqlite: Database.Database, sql: string): Database.Statement {
  const pieces = checkReadOnlyText(sql);
  const statements: Database.Statement[] = [];
  for (const piece of pieces) {
    let statement: Database.Statement;
    try {
      statement = sqlite.prepare(piece.text);
    } catch (error) {
      throw new TierwatchError(
        'USAGE',
        `The statement ${JSON.stringify(piece.text)} is not valid SQL here: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (!statement.readonly) throw refuse(piece, 'SQLite says it writes');
    if (!statement.reader) throw refuse(piece, 'it returns no rows');
    statements.push(statement);
  }
  if (statements.length > 1) {
    throw new TierwatchError(
      'USAGE',
      `Give one statement at a time (got ${statements.length}); each is run and printed on its own.`,
    );
  }
  return statements[0]!;
}

/** Primary SQLite codes that a statement's own mistake produces while it runs: the user's to fix. */
const STATEMENT_FAILURES = new Set([
  'SQLITE_ERROR',
  'SQLITE_TOOBIG',
  'SQLITE_RANGE',
  'SQLITE_MISMATCH',
  'SQLITE_CONSTRAINT',
]);

/**
 * Maps what running a `tierwatch query` statement threw: the statement's own runtime errors
 * ("malformed JSON", "integer overflow", "string or blob too big", an attempt to write that slipped
 * past the guard, parameters it was given no value for) are USAGE with SQLite's message; a failing
 * database (busy, corrupt, I/O) is mapped as the store maps it. A TierwatchError passes through.
 */
export function toQueryError(error: unknown): TierwatchError {
  if (error instanceof TierwatchError) return error;
  const code = sqliteErrorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  // Plain SQLITE_READONLY is "attempt to write a readonly database"; its extended codes
  // (SQLITE_READONLY_CANTINIT, …) are about the file and stay with the store's mapping.
  const readonlyWrite = (error as { code?: unknown } | null)?.code === 'SQLITE_READONLY';
  if ((code !== null && STATEMENT_FAILURES.has(code)) || readonlyWrite) {
    return new TierwatchError(
      'USAGE',
      `The statement failed: ${message}${readonlyWrite ? ' (`tierwatch query` only reads)' : ''}.`,
      {
        cause: error,
        details: { sqliteCode: code },
      },
    );
  }
  // better-sqlite3 checks bound parameters itself: `SELECT ?` has a parameter and no value for it.
  if (error instanceof RangeError && /parameter/i.test(message)) {
    return new TierwatchError(
      'USAGE',
      `The statement has parameters (?, :name), which \`tierwatch query\` cannot fill: write the values into it (${message}).`,
      {
        cause: error,
      },
    );
  }
  return toStoreError(error, 'running the query');
}
