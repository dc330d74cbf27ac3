/**
 * Scrubbing our own credentials out of whatever the exchange sends back. A server may quote the
 * auth message in an error (the documented error frame echoes `incoming_message`, and a server is
 * free to put it in `message` too); anything it quotes would otherwise reach the logs, `check`
 * output, `runs.error_message` and a recorded transcript.
 *
 * One Redactor per session: it starts from the credentials (secret key, JWT and each of its three
 * parts) and learns the auth frame actually sent (its HMAC signature, its nonce, and the frame's
 * whole text). Each secret is searched in every form it could come back in: raw, JSON-escaped
 * (once and twice: a quoted frame inside a message inside a frame), base64, base64url and hex, and
 * hex secrets in either case. Forms shorter than MIN_SECRET_LENGTH are not searched: they would
 * match ordinary text.
 *
 * The public key is not a secret (it is in the URL and in `runs.public_key`): it is left alone here;
 * the transcript writer removes it separately.
 */
import { TierwatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Credentials } from './auth.ts';

export const REDACTED = '[redacted]';
const MIN_SECRET_LENGTH = 8;
/** Log fields and error details nested deeper than this are replaced rather than walked. */
const MAX_DEPTH = 8;
/** The same for a frame's JSON: deeper than any frame the exchange documents. */
const MAX_FRAME_DEPTH = 64;
const HEX = /^[0-9a-fA-F]+$/;

/** Every form of `secret` a server could send back, longest first. */
export function secretForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const jsonOnce = JSON.stringify(secret).slice(1, -1);
  const forms = [
    secret,
    jsonOnce,
    JSON.stringify(jsonOnce).slice(1, -1),
    // Without padding: a quoted secret inside a longer base64 text carries none.
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
  ];
  if (HEX.test(secret)) forms.push(secret.toLowerCase(), secret.toUpperCase());
  return [...new Set(forms)].filter((form) => form.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

/**
 * The secrets a sent frame carries when it is an auth frame: the frame itself, its signature and
 * nonce, its JWT and the JWT's parts. Any other frame carries none.
 */
export function secretsOfAuthFrame(text: string): string[] {
  let message: { type?: unknown; params?: { hmac?: Record<string, unknown>; jwt?: unknown } };
  try {
    message = JSON.parse(text) as typeof message;
  } catch {
    return [];
  }
  if (typeof message !== 'object' || message === null || message.type !== 'auth') return [];
  const secrets = [text];
  const hmac = message.params?.hmac;
  for (const field of ['signature', 'nonce'] as const) {
    const value = hmac?.[field];
    if (typeof value === 'string') secrets.push(value);
  }
  if (typeof message.params?.jwt === 'string') secrets.push(...jwtSecrets(message.params.jwt));
  return secrets;
}

function jwtSecrets(token: string): string[] {
  return [token, ...token.split('.').filter((part) => part !== '')];
}

export class Redactor {
  /** Longest first, so a whole quoted frame goes before the pieces inside it. */
  #forms: string[] = [];

  constructor(secrets: Iterable<string> = []) {
    this.add(secrets);
  }

  /** A session's redactor before its auth frame is sent: the secret key, or the JWT and its parts. */
  static forCredentials(credentials: Credentials): Redactor {
    return new Redactor(credentials.kind === 'hmac' ? [credentials.secretKey] : jwtSecrets(credentials.token));
  }

  /** Adds secrets (and their forms). */
  add(secrets: Iterable<string>): void {
    const forms = new Set(this.#forms);
    for (const secret of secrets) for (const form of secretForms(secret)) forms.add(form);
    this.#forms = [...forms].sort((a, b) => b.length - a.length);
  }

  /** Learns a frame as sent (only an auth frame teaches anything), before any answer to it can arrive. */
  learnSentAuthFrame(text: string): void {
    this.add(secretsOfAuthFrame(text));
  }

  /** `text` with every form of every secret replaced by [redacted]; the same string when none is there. */
  scrub(text: string): string {
    let result = text;
    for (const form of this.#forms) {
      // includes() first: most texts hold no secret, and split/join would copy them.
      if (result.includes(form)) result = result.split(form).join(REDACTED);
    }
    return result;
  }

  /**
   * A text frame from the exchange with every secret scrubbed, still valid JSON when it was: a
   * server may quote our auth message as a string (scrubbed in the text) or as a JSON value, e.g.
   * the documented `incoming_message` (scrubbed value by value, so the frame's structure survives).
   * Frames that hold no form of a secret, nearly all of them, come back untouched after one scan
   * per form; a frame with `\u` escapes is read as JSON too, since an escape can hide a secret.
   */
  scrubFrame(text: string): string {
    if (!this.#forms.some((form) => text.includes(form)) && !text.includes('\\u')) return text;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // Not JSON (or nested too deep to read): the text is all there is, and the parser will refuse it.
      return this.scrub(text);
    }
    const clean = this.scrubValue(value, 0, MAX_FRAME_DEPTH);
    return clean === value ? text : JSON.stringify(clean);
  }

  /** A copy of a log field or error detail with every string (and key) scrubbed; the value itself when clean. */
  scrubValue(value: unknown, depth = 0, maxDepth = MAX_DEPTH): unknown {
    if (typeof value === 'string') return this.scrub(value);
    if (value instanceof Error) return this.scrubError(value, depth);
    if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
    if (depth >= maxDepth) return '[too deep]';
    if (Array.isArray(value)) {
      const items = value.map((item) => this.scrubValue(item, depth + 1, maxDepth));
      return items.every((item, index) => item === value[index]) ? value : items;
    }
    if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
    let changed = false;
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const cleanKey = this.scrub(key);
      copy[cleanKey] = this.scrubValue(item, depth + 1, maxDepth);
      if (copy[cleanKey] !== item || cleanKey !== key) changed = true;
    }
    return changed ? copy : value;
  }

  /**
   * The error with its message, stack, details and causes scrubbed: the same object when nothing
   * needed scrubbing, otherwise a copy of the same class (a TierwatchError keeps its code and
   * retryability).
   */
  scrubError<E extends Error>(error: E, depth = 0): E {
    const message = this.scrub(error.message);
    const stack = error.stack === undefined ? undefined : this.scrub(error.stack);
    const cause =
      depth < MAX_DEPTH && error.cause !== undefined ? this.scrubValue(error.cause, depth + 1) : error.cause;
    const details = error instanceof TierwatchError ? this.scrubValue(error.details, depth + 1) : undefined;
    const clean =
      message === error.message &&
      stack === error.stack &&
      cause === error.cause &&
      (!(error instanceof TierwatchError) || details === error.details);
    if (clean) return error;
    let copy: Error;
    if (error instanceof TierwatchError) {
      copy = new TierwatchError(error.code, message, {
        retryable: error.retryable,
        ...(details === undefined ? {} : { details: details as Record<string, unknown> }),
        ...(cause === undefined ? {} : { cause }),
      });
    } else {
      copy = new Error(message, cause === undefined ? undefined : { cause });
      copy.name = error.name;
      const code = (error as { code?: unknown }).code;
      if (code !== undefined) Object.assign(copy, { code });
    }
    if (stack !== undefined) copy.stack = stack;
    return copy as E;
  }
}

const LEVEL_METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/**
 * A logger whose every line (message, fields, errors, child bindings) goes through `redactor`
 * first. The redactor may learn secrets after this is made; later lines are scrubbed of them too.
 * Lines below the logger's level cost nothing.
 */
export function redactingLogger(logger: Logger, redactor: Redactor): Logger {
  return new Proxy(logger, {
    get(target, property, receiver) {
      if (property === 'child') {
        return (bindings: Record<string, unknown>, options?: object) =>
          redactingLogger(target.child(redactor.scrubValue(bindings) as Record<string, unknown>, options), redactor);
      }
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property === 'string' && LEVEL_METHODS.has(property) && typeof value === 'function') {
        return (...args: unknown[]) => {
          if (!target.isLevelEnabled(property)) return;
          (value as (...a: unknown[]) => void).apply(
            target,
            args.map((arg) => redactor.scrubValue(arg)),
          );
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
