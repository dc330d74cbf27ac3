/**
 * Session transcripts: the frames of real QFEX sessions, both directions, with timestamps, as JSON
 * lines, written by `tierwatch check --record FILE` and served back by `tierwatch simulate --replay
 * FILE`. A user who meets an exchange that behaves unlike our simulator attaches one to a bug report,
 * and it becomes a test fixture.
 *
 * Format (version 1), one JSON object per line:
 *   {"transcript":"tierwatch","version":1,"recorded_at":"<ISO>","endpoint":"wss://…/"}   first line
 *   {"session":1,"at":"<ISO>","dir":"sent","text":"{\"type\":\"auth\",…}"}
 *   {"session":1,"at":"<ISO>","dir":"received","text":"{\"authenticated\":true}"}
 *   {"session":1,"at":"<ISO>","dir":"received","base64":"AAEC"}                      a binary frame
 * `text` is the frame exactly as it crossed the wire (number spellings such as `1.0` included),
 * except for the credentials: the auth frame's signature, nonce, public key and JWT are replaced by
 * "[redacted]", and every frame (received ones too) is scrubbed of every form of them. A session is
 * one connection; its account is the auth frame's `account_id` (none: the primary account).
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { TierwatchError } from '../errors.ts';
import type { Credentials } from './auth.ts';
import type { FrameTap } from './client.ts';
import { REDACTED, Redactor } from './redact.ts';

export const TRANSCRIPT_VERSION = 1;

export interface TranscriptHeader {
  transcript: 'tierwatch';
  version: number;
  recorded_at: string;
  endpoint: string;
}

export interface TranscriptFrame {
  session: number;
  at: string;
  dir: 'sent' | 'received';
  /** A text frame. */
  text?: string;
  /** A binary frame, base64. */
  base64?: string;
}

export interface Transcript {
  header: TranscriptHeader;
  frames: TranscriptFrame[];
}

/** The auth frame as it may be written down: every credential field replaced. */
export function redactAuthFrame(text: string): string {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return text;
  }
  if (typeof message !== 'object' || message === null || (message as { type?: unknown }).type !== 'auth') return text;
  const params = (message as { params?: unknown }).params;
  if (typeof params !== 'object' || params === null) return text;
  const record = params as Record<string, unknown>;
  if (typeof record.jwt === 'string') record.jwt = REDACTED;
  const hmac = record.hmac;
  if (typeof hmac === 'object' && hmac !== null) {
    for (const field of ['public_key', 'nonce', 'signature']) {
      if (field in hmac) (hmac as Record<string, unknown>)[field] = REDACTED;
    }
  }
  return JSON.stringify(message);
}

/**
 * Writes a transcript file. Contract: `open` creates or truncates the file and writes the header
 * (USAGE error naming `--record` when it cannot); each `session()` returns a FrameTap for one
 * connection, which never throws (a write that fails is remembered and reported by `close()`);
 * `close()` is idempotent and throws that first write failure, if any.
 */
export class TranscriptWriter {
  readonly path: string;
  #fd: number | null;
  #sessions = 0;
  #frames = 0;
  #writeError: unknown = null;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  static open(path: string, options: { endpoint: string; now?: () => number }): TranscriptWriter {
    const now = options.now ?? Date.now;
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (error) {
      throw new TierwatchError(
        'USAGE',
        `Cannot write the transcript \`--record\` ${JSON.stringify(path)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const writer = new TranscriptWriter(path, fd);
    const header: TranscriptHeader = {
      transcript: 'tierwatch',
      version: TRANSCRIPT_VERSION,
      recorded_at: new Date(now()).toISOString(),
      endpoint: options.endpoint,
    };
    writer.#line(header);
    return writer;
  }

  /** Frames written so far. */
  get frames(): number {
    return this.#frames;
  }

  /**
   * The tap for one new connection authenticating with `credentials`. Its redactor knows them (the
   * public key included, which is no secret but identifies the user) and learns the auth frame
   * when the tap sees it go out.
   */
  session(credentials: Credentials): FrameTap {
    const session = ++this.#sessions;
    const redactor = Redactor.forCredentials(credentials);
    if (credentials.publicKey !== undefined && credentials.publicKey !== '') redactor.add([credentials.publicKey]);
    return (direction, data, atMs) => {
      const frame: TranscriptFrame = { session, at: new Date(atMs).toISOString(), dir: direction };
      if (typeof data === 'string') {
        if (direction === 'sent') redactor.learnSentAuthFrame(data);
        frame.text = direction === 'sent' ? redactor.scrub(redactAuthFrame(data)) : redactor.scrubFrame(data);
      } else {
        // latin1 maps each byte to one character, so the ASCII forms of the secrets are found in binary frames too.
        frame.base64 = Buffer.from(redactor.scrub(data.toString('latin1')), 'latin1').toString('base64');
      }
      this.#frames++;
      this.#line(frame);
    };
  }

  close(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    this.#fd = null;
    if (this.#writeError !== null) {
      throw new TierwatchError(
        'USAGE',
        `Writing the transcript ${JSON.stringify(this.path)} failed: ${(this.#writeError as Error).message}`,
        {
          cause: this.#writeError,
        },
      );
    }
  }

  #line(value: object): void {
    if (this.#fd === null || this.#writeError !== null) return;
    try {
      writeSync(this.#fd, `${JSON.stringify(value)}\n`);
    } catch (error) {
      this.#writeError = error;
    }
  }
}

/**
 * Reads and checks a transcript file. Throws TierwatchError USAGE naming `flag`, the file and the
 * line, for an unreadable file, a line that is not JSON, a missing or unknown header, or a frame
 * line without session, direction, timestamp and text (or base64).
 */
export function readTranscript(path: string, flag = '--replay'): Transcript {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TierwatchError(
      'USAGE',
      `Cannot read the transcript \`${flag}\` ${JSON.stringify(path)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const bad = (line: number, why: string) =>
    new TierwatchError(
      'USAGE',
      `The transcript \`${flag}\` ${JSON.stringify(path)} is not valid: line ${line} ${why}.`,
    );
  const lines = content.split('\n');
  let header: TranscriptHeader | null = null;
  const frames: TranscriptFrame[] = [];
  for (let index = 0; index < lines.length; index++) {
    const text = lines[index]!.trim();
    if (text === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw bad(index + 1, 'is not JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw bad(index + 1, 'is not a JSON object');
    }
    const record = value as Record<string, unknown>;
    if (header === null) {
      if (record.transcript !== 'tierwatch') {
        throw bad(index + 1, 'is not a tierwatch transcript header ({"transcript":"tierwatch",…})');
      }
      if (record.version !== TRANSCRIPT_VERSION) {
        throw bad(
          index + 1,
          `has version ${JSON.stringify(record.version)}; this tierwatch reads version ${TRANSCRIPT_VERSION}`,
        );
      }
      header = {
        transcript: 'tierwatch',
        version: TRANSCRIPT_VERSION,
        recorded_at: typeof record.recorded_at === 'string' ? record.recorded_at : '',
        endpoint: typeof record.endpoint === 'string' ? record.endpoint : '',
      };
      continue;
    }
    const { session, at, dir } = record;
    if (typeof session !== 'number' || !Number.isInteger(session) || session < 1) {
      throw bad(index + 1, 'has no `session` number');
    }
    if (dir !== 'sent' && dir !== 'received') throw bad(index + 1, 'has no `dir` ("sent" or "received")');
    if (typeof at !== 'string' || Number.isNaN(Date.parse(at))) throw bad(index + 1, 'has no ISO-8601 `at`');
    const frame: TranscriptFrame = { session, at, dir };
    if (typeof record.text === 'string') frame.text = record.text;
    else if (typeof record.base64 === 'string') frame.base64 = record.base64;
    else throw bad(index + 1, 'has neither `text` nor `base64`');
    frames.push(frame);
  }
  if (header === null) {
    throw new TierwatchError('USAGE', `The transcript \`${flag}\` ${JSON.stringify(path)} is empty.`);
  }
  return { header, frames };
}
