/**
 * Which history a command uses: the SQLite file at TIERWATCH_DB (the default), or a Postgres
 * database when TIERWATCH_DB is a `postgres://` (or `postgresql://`) URL — or when
 * TIERWATCH_DB_FILE names a file holding one, so that a URL with a password need not sit in the
 * environment or the process list.
 *
 * A Postgres URL is held in a `PostgresUrl`, whose every printable form (String(), JSON, util.inspect,
 * so also a log line that carries the whole config) is the URL without its password; only
 * `reveal()` gives what connects.
 */
import { inspect } from 'node:util';
import { TierwatchError } from './errors.ts';
import { readBoundedFile, SECRET_FILE_MAX_BYTES } from './config-file.ts';
import type { Reader } from './config-reader.ts';

export const DEFAULT_DB_PATH = './data/tierwatch.db';
export const DB_FILE_VARIABLE = 'TIERWATCH_DB_FILE';

const POSTGRES_SCHEME = /^postgres(?:ql)?:\/\//i;

/** The URL without its password or query parameters (which may carry one). */
export function describePgUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const user = parsed.username === '' ? '' : `${decodeURIComponent(parsed.username)}@`;
    return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`;
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** A Postgres connection URL that prints without its password (see the module comment). */
export class PostgresUrl {
  readonly #url: string;
  /** The printable form: no password, no query parameters. */
  readonly display: string;
  /** Where it came from: the variable or flag to name in a message. */
  readonly source: string;

  constructor(url: string, source: string) {
    this.#url = url;
    this.display = describePgUrl(url);
    this.source = source;
  }

  /** The URL itself, with its password: for connecting, never for printing. */
  reveal(): string {
    return this.#url;
  }

  toString(): string {
    return this.display;
  }

  toJSON(): string {
    return this.display;
  }

  [inspect.custom](): string {
    return `PostgresUrl(${this.display})`;
  }
}

export type DatabaseTarget = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: PostgresUrl };

function parsePostgresUrl(text: string, source: string): PostgresUrl {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    // The text itself may hold a password: name the source, never quote it.
    throw new TierwatchError(
      'CONFIG_INVALID',
      `\`${source}\` holds a postgres:// URL that cannot be parsed (such as postgres://user:password@host:5432/tierwatch); a password with @, : or / must be percent-encoded.`,
    );
  }
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `\`${source}\` holds a postgres:// URL without a host (such as postgres://user:password@host:5432/tierwatch).`,
    );
  }
  return new PostgresUrl(text, source);
}

/**
 * The history to use. TIERWATCH_DB (or --db) is a path or a postgres:// URL; TIERWATCH_DB_FILE is a
 * file holding a postgres:// URL. A flag overrides both; both variables at once is refused.
 */
export function readDatabase(reader: Reader): DatabaseTarget {
  const direct = reader.raw('TIERWATCH_DB');
  const file = reader.raw(DB_FILE_VARIABLE);
  const fromFlag = direct !== null && direct.name.startsWith('--');
  if (direct !== null && file !== null && !fromFlag) {
    throw new TierwatchError('CONFIG_INVALID', `Set either \`TIERWATCH_DB\` or \`${DB_FILE_VARIABLE}\`, not both.`);
  }
  if (direct !== null && (fromFlag || file === null)) {
    if (POSTGRES_SCHEME.test(direct.value)) {
      return { kind: 'postgres', url: parsePostgresUrl(direct.value, direct.name) };
    }
    return { kind: 'sqlite', path: direct.value };
  }
  if (file !== null) {
    const text = readBoundedFile(file.name, file.value, SECRET_FILE_MAX_BYTES).trim();
    if (!POSTGRES_SCHEME.test(text)) {
      throw new TierwatchError(
        'CONFIG_INVALID',
        `\`${file.name}\` names ${JSON.stringify(file.value)}, which does not hold a postgres:// URL (for a SQLite file, set TIERWATCH_DB to its path).`,
      );
    }
    return { kind: 'postgres', url: parsePostgresUrl(text, file.name) };
  }
  return { kind: 'sqlite', path: DEFAULT_DB_PATH };
}

/**
 * The SQLite path of a command that works on SQLite only; a Postgres target is refused (the CLI
 * prefixes the command's name), so no such command ever treats a URL as a file name.
 */
export function requireSqlitePath(target: DatabaseTarget): string {
  if (target.kind === 'sqlite') return target.path;
  throw new TierwatchError(
    'CONFIG_INVALID',
    `this command works on a SQLite history only, and \`${target.url.source}\` names Postgres (${target.url.display}); docs/teams.md lists what runs on Postgres.`,
  );
}
