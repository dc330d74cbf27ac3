/**
 * The QFEX client at the network's edges: TLS with a private CA (made with openssl here) and an
 * untrusted certificate, a stalled TLS handshake, refused connections, an unresolvable host (the
 * resolver is injected: no real DNS query), HTTP refusals at the upgrade, and frames a scripted `ws`
 * server sends that the simulator does not (a leverage page before auth, pushes during paging).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { Writable } from 'node:stream';
import { TierwatchError } from '../src/errors.ts';
import { loopbackLookup, makeTestTls } from './helpers/network.ts';
import { createLogger } from '../src/log.ts';
import { openSession, type QfexClientOptions } from '../src/qfex/client.ts';
import { startSimulator, type Simulator } from '../src/sim/index.ts';
import { rawText } from '../src/sim/raw-data.ts';

const PUBLIC = 'qfex_pub_network';
const SECRET = 'qfex_secret_network_test';
const timeouts = { connectMs: 1500, authMs: 1500, requestMs: 1500, idleMs: 5000 };

async function rejectsWith(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<TierwatchError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TierwatchError, `not a TierwatchError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    assert.ok(!error.message.includes(SECRET));
    return error;
  }
  assert.fail(`expected ${code}`);
}

/** Resolves every name to 127.0.0.1 (or fails with ENOTFOUND for *.invalid), recording the names. */
const { lookup: fakeLookup, names: lookups } = loopbackLookup((hostname) => hostname.endsWith('.invalid'));

// ---- TLS material: a throwaway CA and a certificate for localhost ----

let dir = '';
let caPem = '';
let tlsSim: Simulator;
const servers: Array<{ close: () => unknown }> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tierwatch-qfex-tls-'));
  const tls = makeTestTls(dir);
  caPem = tls.caPem;
  tlsSim = await startSimulator({
    tls: { key: tls.key, cert: tls.cert },
    keys: [{ publicKey: PUBLIC, secretKey: SECRET }],
  });
});

after(async () => {
  await tlsSim?.close();
  await Promise.all(servers.map((server) => server.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function options(url: string, overrides: Partial<QfexClientOptions> = {}): QfexClientOptions {
  return {
    url,
    credentials: { kind: 'hmac', publicKey: PUBLIC, secretKey: SECRET },
    timeouts,
    lookup: fakeLookup,
    ...overrides,
  };
}

test('wss:// with the private CA given through `ca` connects, authenticates and pages', async () => {
  assert.match(tlsSim.url, /^wss:\/\/localhost:\d+$/);
  lookups.length = 0;
  const session = await openSession(options(tlsSim.url, { ca: caPem }));
  try {
    assert.equal((await session.requestLeveragePage(3, 0)).length, 3);
  } finally {
    session.close();
  }
  assert.deepEqual(lookups, ['localhost']);
});

test('wss:// without the CA: the untrusted certificate is QFEX_TLS, not retryable', async () => {
  const error = await rejectsWith(openSession(options(tlsSim.url)), 'QFEX_TLS', /QFEX_CA_FILE/);
  assert.equal(error.retryable, false);
  assert.equal(tlsSim.stats.authOk, 1);
});

test('a certificate for another name is QFEX_TLS even with the CA trusted', async () => {
  // other.example resolves to loopback through our lookup, but the certificate does not name it.
  await rejectsWith(openSession(options(tlsSim.url.replace('localhost', 'other.example'), { ca: caPem })), 'QFEX_TLS');
});

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push({ close: () => new Promise((resolve) => server.close(resolve)) });
  return (server.address() as { port: number }).port;
}

test('a TLS server that stalls the handshake is QFEX_TIMEOUT after connectMs', async () => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket));
  const port = await listen(server);
  // The server is in this process: on a loaded machine the client's 100 ms timer can fire before
  // this loop has run the server's accept, so the accept is awaited rather than assumed done.
  const accepted = once(server, 'connection');
  // Every other timeout far away: only connectMs can explain an end within the bound below.
  const slow = { connectMs: 100, authMs: 60_000, requestMs: 60_000, idleMs: 60_000 };
  const started = performance.now();
  const error = await rejectsWith(
    openSession(options(`wss://localhost:${port}`, { ca: caPem, timeouts: slow })),
    'QFEX_TIMEOUT',
    /handshake/,
  );
  assert.ok(performance.now() - started < 30_000);
  assert.equal(error.retryable, true);
  await accepted;
  assert.equal(sockets.length, 1);
  for (const socket of sockets) socket.destroy();
});

test('a refused connection is QFEX_CONNECT, retryable', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  const error = await rejectsWith(openSession(options(`ws://127.0.0.1:${port}`)), 'QFEX_CONNECT', /ECONNREFUSED/);
  assert.equal(error.retryable, true);
});

test('a host name that does not resolve is QFEX_CONNECT, through the injected resolver', async () => {
  lookups.length = 0;
  await rejectsWith(openSession(options('wss://trade.qfex.invalid')), 'QFEX_CONNECT', /ENOTFOUND/);
  assert.deepEqual(lookups, ['trade.qfex.invalid']);
});

test('a peer that resets the connection mid-handshake is QFEX_CONNECT', async () => {
  const port = await listen(createServer((socket) => socket.once('data', () => socket.resetAndDestroy())));
  await rejectsWith(openSession(options(`ws://127.0.0.1:${port}`)), 'QFEX_CONNECT');
});

test('a malformed URL is CONFIG_INVALID', async () => {
  await rejectsWith(openSession(options('not a url')), 'CONFIG_INVALID');
  await rejectsWith(openSession(options('https://trade.qfex.com')), 'CONFIG_INVALID');
});

// ---- a scripted ws server for what the simulator does not send ----

interface Scripted {
  url: string;
  requests: IncomingMessage[];
  received: unknown[];
}

async function scripted(
  onMessage: (ws: WebSocket, message: Record<string, unknown>) => void,
  verifyStatus?: number,
): Promise<Scripted> {
  const requests: IncomingMessage[] = [];
  const received: unknown[] = [];
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info, callback) => {
      requests.push(info.req);
      if (verifyStatus === undefined) callback(true);
      else callback(false, verifyStatus);
    },
  });
  await once(wss, 'listening');
  servers.push({
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(resolve);
      }),
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const message = JSON.parse(rawText(data)) as Record<string, unknown>;
      received.push(message);
      onMessage(ws, message);
    });
  });
  return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, requests, received };
}

test('the public key goes in ?api_key=, the secret and the JWT never in the URL', async () => {
  const server = await scripted((ws, message) => {
    if (message.type === 'auth') ws.send('{"authenticated":true}');
  });
  (await openSession(options(server.url))).close();
  (
    await openSession(options(server.url, { credentials: { kind: 'jwt', token: 'h.p.s', publicKey: 'qfex_pub_jwt' } }))
  ).close();
  (await openSession(options(server.url, { credentials: { kind: 'jwt', token: 'h.p.s' } }))).close();
  assert.deepEqual(
    server.requests.map((request) => request.url),
    [`/?api_key=${PUBLIC}`, '/?api_key=qfex_pub_jwt', '/'],
  );
  const [hmac, jwt] = server.received as Array<{
    params: { hmac?: { signature: string; nonce: string }; jwt?: string; account_id?: string };
  }>;
  assert.match(hmac!.params.hmac!.signature, /^[0-9a-f]{64}$/);
  assert.match(hmac!.params.hmac!.nonce, /^[0-9a-f]{32}$/);
  assert.equal(jwt!.params.jwt, 'h.p.s');
  assert.ok(server.received.every((message) => !('account_id' in (message as { params: object }).params)));
});

test('HTTP 401/403 at the upgrade is QFEX_AUTH_REJECTED; a 503 is QFEX_CONNECT', async () => {
  for (const status of [401, 403]) {
    const server = await scripted(() => {}, status);
    const error = await rejectsWith(
      openSession(options(server.url)),
      'QFEX_AUTH_REJECTED',
      new RegExp(`HTTP ${status}`),
    );
    assert.equal(error.retryable, false);
  }
  const unavailable = await scripted(() => {}, 503);
  assert.equal((await rejectsWith(openSession(options(unavailable.url)), 'QFEX_CONNECT', /HTTP 503/)).retryable, true);
});

test('pushes during paging are skipped; a leverage page before auth is skipped too (the auth answer is still awaited)', async () => {
  const polite = await scripted((ws, message) => {
    if (message.type === 'auth') {
      ws.send('{"subscribed":"order_responses"}');
      ws.send('{"type":"auth","result":"success"}');
      return;
    }
    ws.send(
      JSON.stringify({ type: 'subscribed', connection_id: 'c', message_id: 7, channel: 'v4_balances', contents: [] }),
    );
    ws.send(
      JSON.stringify({ available_leverage_levels_response: [{ symbol: 'X-USD' }], $schema: 'https://example/schema' }),
    );
  });
  const session = await openSession(options(polite.url));
  try {
    assert.deepEqual(await session.requestLeveragePage(10, 0), [{ symbol: 'X-USD' }]);
  } finally {
    session.close();
  }

  const eager = await scripted((ws) => ws.send('{"available_leverage_levels_response":[]}'));
  const ignored: string[] = [];
  // 2 s, not 0.3 s: a stall of the loaded machine must not let the auth timer fire before the page is read.
  await rejectsWith(
    openSession(
      options(eager.url, { timeouts: { ...timeouts, authMs: 2000 }, onIgnoredFrame: (type) => ignored.push(type) }),
    ),
    'QFEX_TIMEOUT',
    /auth message/,
  );
  assert.deepEqual(ignored, ['available_leverage_levels_response']);
});

test('an error frame answering the auth message is QFEX_AUTH_REJECTED with the exchange code', async () => {
  const server = await scripted((ws) =>
    ws.send(JSON.stringify({ type: 'error', error_code: 'PermissionDenied', message: 'bad signature' })),
  );
  await rejectsWith(openSession(options(server.url)), 'QFEX_AUTH_REJECTED', /PermissionDenied: bad signature/);
});

test('an unsolicited page, or an unsolicited error frame, after auth', async () => {
  const server = await scripted((ws, message) => {
    if (message.type !== 'auth') return;
    ws.send('{"authenticated":true}');
    ws.send('{"err":{"error_code":"ServerError","message":null}}');
    ws.send('{"available_leverage_levels_response":[]}');
  });
  // Both are skipped and counted (wait for the second count rather than for time to pass); the
  // stale page marks the session as out of step, so the caller moves to a fresh connection.
  const ignored: string[] = [];
  let bothSeen!: () => void;
  const seen = new Promise<void>((resolve) => (bothSeen = resolve));
  const logged: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      logged.push(String(chunk));
      callback();
    },
  });
  const session = await openSession(
    options(server.url, {
      logger: createLogger({ level: 'debug', destination }),
      onIgnoredFrame: (type) => {
        ignored.push(type);
        if (ignored.length === 2) bothSeen();
      },
    }),
  );
  try {
    await seen;
    assert.deepEqual(ignored, ['err', 'available_leverage_levels_response']);
    assert.equal(session.desynchronised, true);
    assert.ok(logged.some((line) => line.includes('"frame_type":"err"')));
    assert.ok(!logged.some((line) => line.includes('QFEX connection failed')), 'the session did not fail');
  } finally {
    session.close();
  }
});
