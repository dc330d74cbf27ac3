/**
 * The optional bearer token of the web view (TIERWATCH_HTTP_TOKEN, or TIERWATCH_HTTP_TOKEN_FILE
 * naming a file that holds it). The file is re-read on every request, so the token rotates without
 * a restart, as the QFEX secrets do. The token is never logged; a presented token is compared with
 * it in constant time (both are hashed first, so their lengths leak nothing either).
 *
 * Accepted as `Authorization: Bearer <token>` (programs) or as the password of HTTP Basic
 * authentication, any user name (a browser asks for it by itself after a 401 with a Basic challenge).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readBoundedFile, SECRET_FILE_MAX_BYTES } from '../config-file.ts';
import { TierwatchError } from '../errors.ts';

export const TOKEN_VARIABLE = 'TIERWATCH_HTTP_TOKEN';
export const TOKEN_FILE_VARIABLE = 'TIERWATCH_HTTP_TOKEN_FILE';

export type TokenSource = { from: 'env'; value: string } | { from: 'file'; path: string };

/** Where the token comes from, or null when the view is open. Throws CONFIG_INVALID when both are set. */
export function tokenSource(env: Record<string, string | undefined>): TokenSource | null {
  const direct = env[TOKEN_VARIABLE]?.trim() ?? '';
  const file = env[TOKEN_FILE_VARIABLE]?.trim() ?? '';
  if (direct !== '' && file !== '') {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `Set either \`${TOKEN_VARIABLE}\` or \`${TOKEN_FILE_VARIABLE}\`, not both.`,
    );
  }
  if (direct !== '') return { from: 'env', value: direct };
  if (file !== '') return { from: 'file', path: file };
  return null;
}

/** The token now (a file is read now). Throws CONFIG_INVALID for a missing, empty or oversized file. */
export function readToken(source: TokenSource): string {
  if (source.from === 'env') return source.value;
  const value = readBoundedFile(TOKEN_FILE_VARIABLE, source.path, SECRET_FILE_MAX_BYTES).trim();
  if (value === '') {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `\`${TOKEN_FILE_VARIABLE}\` names ${JSON.stringify(source.path)}, which is empty.`,
    );
  }
  return value;
}

/** The token presented in an Authorization header (Bearer, or Basic's password), or null. */
export function presentedToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^\s*(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
  if (match === null) return null;
  if (match[1]!.toLowerCase() === 'bearer') return match[2]!;
  const decoded = Buffer.from(match[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? null : decoded.slice(colon + 1);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Whether `presented` is the token, in time that depends on neither value. */
export function tokenMatches(presented: string | null, token: string): boolean {
  // Compared even when nothing was presented, so that case takes the same time.
  const equal = timingSafeEqual(digest(presented ?? ''), digest(token));
  return presented !== null && equal;
}
