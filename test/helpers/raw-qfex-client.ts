/**
 * A raw QFEX client for the simulator's own tests, written on purpose without src/qfex: frames in,
 * frames out, signing by hand, so a bug in the real client cannot hide a bug in the simulator.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { WebSocket, type ClientOptions } from 'ws';
import {
  DEMO_PUBLIC_KEY,
  DEMO_SECRET_KEY,
  startSimulator,
  type Simulator,
  type SimulatorOptions,
} from '../../src/sim/index.ts';

export async function withSim(options: SimulatorOptions, body: (sim: Simulator) => Promise<void>): Promise<void> {
  const sim = await startSimulator(options);
  try {
    await body(sim);
  } finally {
    await sim.close();
  }
}

// ---- a raw test client, written here on purpose (never src/qfex): frames in, frames out ----

export type Frame = { kind: 'text'; text: string; json: any } | { kind: 'binary'; data: Buffer };

export class RawClient {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  pings = 0;
  private readonly frames: Frame[] = [];
  private readonly waiters: Array<(frame: Frame | null) => void> = [];
  private isClosed = false;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      let frame: Frame;
      if (isBinary) frame = { kind: 'binary', data: buf };
      else {
        const text = buf.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        frame = { kind: 'text', text, json };
      }
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.frames.push(frame);
    });
    ws.on('ping', () => this.pings++);
    ws.on('error', () => {});
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.isClosed = true;
        for (const waiter of this.waiters.splice(0)) waiter(null);
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  /** Opens a socket; rejects with `HTTP <status>` when the upgrade is refused. */
  static open(url: string, options: ClientOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const client = new RawClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        reject(new Error(`HTTP ${res.statusCode}`));
        res.resume();
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /** The next frame; rejects on timeout or when the socket closes first. */
  next(timeoutMs = 2000): Promise<Frame> {
    const queued = this.frames.shift();
    if (queued) return Promise.resolve(queued);
    if (this.isClosed) return Promise.reject(new Error('closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(deliver), 1);
        reject(new Error('timeout'));
      }, timeoutMs);
      const deliver = (frame: Frame | null) => {
        clearTimeout(timer);
        if (frame) resolve(frame);
        else reject(new Error('closed'));
      };
      this.waiters.push(deliver);
    });
  }

  async json(timeoutMs = 2000): Promise<any> {
    const frame = await this.next(timeoutMs);
    assert.equal(frame.kind, 'text');
    assert.notEqual(frame.json, undefined, `expected JSON, got ${frame.kind === 'text' ? frame.text : 'binary'}`);
    return frame.json;
  }

  /** Asserts that nothing arrives within `ms` (used only where the point is a missing answer). */
  async expectSilence(ms: number): Promise<void> {
    await assert.rejects(this.next(ms), /timeout/);
  }
}

export function sign(secret: string, nonce: string, ts: number): string {
  return createHmac('sha256', secret).update(`${nonce}:${ts}`).digest('hex');
}

export function authFrame(
  o: { publicKey?: string; secret?: string; nonce?: string; ts?: number; accountId?: string; signature?: string } = {},
): Record<string, unknown> {
  const publicKey = o.publicKey ?? DEMO_PUBLIC_KEY;
  const nonce = o.nonce ?? randomBytes(16).toString('hex');
  const ts = o.ts ?? Math.floor(Date.now() / 1000);
  const signature = o.signature ?? sign(o.secret ?? DEMO_SECRET_KEY, nonce, ts);
  return {
    type: 'auth',
    params: {
      hmac: { public_key: publicKey, nonce, unix_ts: ts, signature },
      ...(o.accountId === undefined ? {} : { account_id: o.accountId }),
    },
  };
}

export async function authed(
  sim: Simulator,
  frame: Record<string, unknown> = authFrame(),
  options: ClientOptions = {},
): Promise<RawClient> {
  const client = await RawClient.open(`${sim.url}/?api_key=${DEMO_PUBLIC_KEY}`, options);
  client.send(frame);
  assert.deepEqual(await client.json(), { authenticated: true });
  return client;
}
