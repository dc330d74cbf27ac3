/**
 * A server that answers from a recorded transcript (see qfex/transcript.ts) instead of a tier
 * book: `tierwatch simulate --replay FILE`. With it, a session recorded against the real exchange
 * becomes a fixture that `tierwatch collect` (or a test) can be run against.
 *
 * How it answers:
 * - The transcript is cut into exchanges: each frame our client sent, with the frames received
 *   after it (up to the next one sent on that session). Frames received before anything was sent
 *   are the greeting, sent on every connection.
 * - `auth` is answered with the recorded answer to auth for the account the auth message names
 *   (`account_id`, none = primary). The signature is not checked: the transcript's is redacted.
 * - Any other request is matched to a recorded request of the same account by its type and params
 *   (`limit`, `offset`, … in any key order) and answered with what followed it. A request recorded
 *   several times (a retried page, a restarted pass, a second session) is answered with its
 *   recordings in order, the last one again once they are used up.
 * - A request the transcript does not hold is answered with an error frame, code `NotInTranscript`,
 *   whose message names what was asked and what the transcript holds, and is logged as an error.
 * Answers are sent at once: the recorded timestamps are not replayed. Close frames and pings are
 * not in transcripts: the replay server pings no one and answers pings.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { rawText } from './raw-data.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { Transcript, TranscriptFrame } from '../qfex/transcript.ts';

export interface ReplayOptions {
  transcript: Transcript;
  host?: string;
  port?: number;
  logger?: Logger;
}

export interface ReplayStats {
  connections: number;
  /** Requests answered from the transcript (auth included). */
  answered: number;
  /** Requests the transcript had no answer for. */
  missing: number;
}

export interface ReplayServer {
  readonly url: string;
  readonly stats: ReplayStats;
  /** Sessions and distinct requests in the transcript. */
  readonly sessions: number;
  readonly requests: number;
  close(): Promise<void>;
}

type Wire = string | Buffer;

/** Recorded answers to one request, used in order, the last one repeated. */
interface Answers {
  recorded: Wire[][];
  used: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON value with its object keys sorted, so `{offset, limit}` matches `{limit, offset}`. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (!isRecord(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, canonical(value[key])]),
  );
}

/** How a request is matched: its type and canonical params; the raw text when it is not a request object. */
export function requestKey(text: string): { key: string; type: string | null; account: string | null } {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return { key: `text ${text}`, type: null, account: null };
  }
  if (!isRecord(message) || typeof message.type !== 'string') {
    return { key: `json ${JSON.stringify(canonical(message))}`, type: null, account: null };
  }
  const params = isRecord(message.params) ? message.params : {};
  if (message.type === 'auth') {
    return {
      key: 'auth',
      type: 'auth',
      account: typeof params.account_id === 'string' ? params.account_id : 'primary',
    };
  }
  return { key: `${message.type} ${JSON.stringify(canonical(params))}`, type: message.type, account: null };
}

function wireOf(frame: TranscriptFrame): Wire {
  return frame.text ?? Buffer.from(frame.base64 ?? '', 'base64');
}

/** The transcript as answers: account → request key → recorded answers; plus the greeting. */
export function indexTranscript(transcript: Transcript): {
  byAccount: Map<string, Map<string, Answers>>;
  greeting: Wire[];
  sessions: number;
} {
  const byAccount = new Map<string, Map<string, Answers>>();
  const bySession = new Map<number, TranscriptFrame[]>();
  for (const frame of transcript.frames) {
    let frames = bySession.get(frame.session);
    if (frames === undefined) bySession.set(frame.session, (frames = []));
    frames.push(frame);
  }
  for (const frames of bySession.values()) {
    let account = 'primary';
    let current: Wire[] | null = null;
    for (const frame of frames) {
      if (frame.dir === 'received') {
        current?.push(wireOf(frame));
        continue;
      }
      const request = requestKey(frame.text ?? '');
      if (request.account !== null) account = request.account;
      let answers = byAccount.get(account);
      if (answers === undefined) byAccount.set(account, (answers = new Map<string, Answers>()));
      let entry = answers.get(request.key);
      if (entry === undefined) answers.set(request.key, (entry = { recorded: [], used: 0 }));
      current = [];
      entry.recorded.push(current);
    }
  }
  // The first session's greeting (what arrived before anything was sent): a real exchange greets every session alike.
  const greeting: Wire[] = [];
  for (const frame of bySession.values().next().value ?? []) {
    if (frame.dir === 'sent') break;
    greeting.push(wireOf(frame));
  }
  return { byAccount, greeting, sessions: bySession.size };
}

function errorFrame(code: string, message: string, incoming: unknown): string {
  return JSON.stringify({ err: { error_code: code, message, incoming_message: incoming } });
}

/** Starts a replay server on a loopback port (by default); resolves once it listens. */
export async function startReplayServer(options: ReplayOptions): Promise<ReplayServer> {
  const log = (options.logger ?? silentLogger()).child({ component: 'replay' });
  const { byAccount, greeting, sessions } = indexTranscript(options.transcript);
  const stats: ReplayStats = { connections: 0, answered: 0, missing: 0 };
  const host = options.host ?? '127.0.0.1';
  const wss = new WebSocketServer({ host, port: options.port ?? 0, perMessageDeflate: false, maxPayload: 1024 * 1024 });
  await once(wss, 'listening');
  const port = (wss.address() as AddressInfo).port;
  const url = `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const held = (account: string): string => {
    const keys = [...(byAccount.get(account)?.keys() ?? [])];
    return keys.length === 0
      ? 'nothing for this account'
      : `${keys.slice(0, 12).join('; ')}${keys.length > 12 ? `; … (${keys.length} in all)` : ''}`;
  };

  wss.on('connection', (ws: WebSocket) => {
    stats.connections++;
    const connection = stats.connections;
    let account: string | null = null;
    const send = (frames: readonly Wire[]) => {
      for (const frame of frames) ws.send(frame, { binary: Buffer.isBuffer(frame) });
    };
    ws.on('error', (error) => log.debug({ connection, err: error }, 'connection error'));
    send(greeting);
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : rawText(data);
      const request = requestKey(text);
      if (request.type === 'auth') account = request.account;
      const answers = account === null ? undefined : byAccount.get(account)?.get(request.key);
      if (answers === undefined) {
        stats.missing++;
        const asked = request.key === 'auth' ? `auth for account ${account}` : request.key;
        const message =
          account === null
            ? `the transcript answers nothing before auth; asked: ${asked}`
            : `the transcript holds no answer to ${asked} (account ${account}); it holds: ${held(account)}`;
        log.error({ connection, account, request: request.key }, `replay: ${message}`);
        let incoming: unknown = text;
        try {
          incoming = JSON.parse(text);
        } catch {
          /* the raw text, as the exchange echoes non-JSON */
        }
        ws.send(errorFrame('NotInTranscript', message, incoming));
        return;
      }
      const frames = answers.recorded[Math.min(answers.used, answers.recorded.length - 1)]!;
      answers.used++;
      stats.answered++;
      log.debug({ connection, account, request: request.key, frames: frames.length }, 'replay: answered');
      send(frames);
    });
  });

  log.info({ url, sessions }, 'replay server listening');
  return {
    url,
    stats,
    sessions,
    requests: [...byAccount.values()].reduce((sum, answers) => sum + answers.size, 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}
