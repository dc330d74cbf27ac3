/**
 * The guard of `tierwatch query`: only plain reads get through.
 *
 * A read-only connection is not enough on its own: ATTACH can create and write another file,
 * VACUUM INTO writes a copy anywhere, and some pragmas change the connection or the file. So every
 * statement of the input is checked twice: its first keyword must be one of SELECT, WITH, VALUES,
 * EXPLAIN or PRAGMA (and a PRAGMA must be a read of an allow-listed one, with no `=`), and SQLite
 * itself must call the compiled statement read-only (`stmt.readonly`, sqlite3_stmt_readonly), which
 * catches `WITH … DELETE` and anything the keyword check cannot see.
 */
import type Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';

/** Pragmas that only report something, called without an argument. */
const READ_PRAGMAS = new Set([
  'application_id', 'auto_vacuum', 'collation_list', 'compile_options', 'data_version', 'database_list', 'encoding',
  'foreign_key_check', 'foreign_keys', 'freelist_count', 'function_list', 'integrity_check', 'journal_mode',
  'module_list', 'page_count', 'page_size', 'pragma_list', 'quick_check', 'schema_version', 'table_list',
  'user_version',
]);
/** Pragmas that only report something about their argument: PRAGMA table_info(runs). */
const READ_PRAGMAS_WITH_ARGUMENT = new Set([
  'foreign_key_check', 'foreign_key_list', 'index_info', 'index_list', 'index_xinfo', 'integrity_check',
  'quick_check', 'table_info', 'table_list', 'table_xinfo',
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
    const closer = character === "'" ? "'" : character === '"' ? '"' : character === '`' ? '`' : character === '[' ? ']' : null;
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
  const pragma = /^PRAGMA\s+(?:(?:[A-Za-z_]\w*|"[^"]*"|`[^`]*`|\[[^\]]*\])\s*\.\s*)?([A-Za-z_]\w*)\s*(=|\()?/i.exec(piece.code);
  if (!pragma) throw refuse(piece, 'this PRAGMA could not be read');
  const name = pragma[1]!.toLowerCase();
  const form = pragma[2];
  if (form === '=') throw refuse(piece, `PRAGMA ${name} = … changes a setting`);
  const allowed = form === '(' ? READ_PRAGMAS_WITH_ARGUMENT.has(name) : READ_PRAGMAS.has(name);
  if (!allowed) throw refuse(piece, `PRAGMA ${name}${form === '(' ? '(…)' : ''} is not on the list of read-only pragmas`);
}

/**
 * Prepares `sql` for reading, or throws TierwatchError('USAGE') with the reason: empty input, a
 * statement that is not a plain read (checked for every statement of the input, before anything
 * runs), more than one statement, or a syntax error. The result is the one statement to run.
 */
export function prepareReadOnly(sqlite: Database.Database, sql: string): Database.Statement {
  const pieces = splitStatements(sql);
  if (pieces.length === 0) throw new TierwatchError('USAGE', 'Give a statement to run, e.g. tierwatch query "SELECT * FROM runs LIMIT 5".');
  const statements: Database.Statement[] = [];
  for (const piece of pieces) {
    checkKeyword(piece);
    let statement: Database.Statement;
    try {
      statement = sqlite.prepare(piece.text);
    } catch (error) {
      throw new TierwatchError('USAGE', `The statement ${JSON.stringify(piece.text)} is not valid SQL here: ${(error as Error).message}`, { cause: error });
    }
    if (!statement.readonly) throw refuse(piece, 'SQLite says it writes');
    if (!statement.reader) throw refuse(piece, 'it returns no rows');
    statements.push(statement);
  }
  if (statements.length > 1) {
    throw new TierwatchError('USAGE', `Give one statement at a time (got ${statements.length}); each is run and printed on its own.`);
  }
  return statements[0]!;
}
