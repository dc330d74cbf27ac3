/** The simulator's authentication, deadline and heartbeat behaviour, over real sockets with a raw ws client. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, defaultUniverse, makeTier, startSimulator } from '../src/sim/index.ts';
import { authFrame, authed, RawClient, sign, withSim } from './helpers/raw-qfex-client.ts';

const SUB = '11111111-1111-1111-1111-111111111111';
const KEYS = [{ publicKey: DEMO_PUBLIC_KEY, secretKey: DEMO_SECRET_KEY, accounts: ['primary', SUB] }];

test('auth success answers {"authenticated":true}; the legacy mode answers {"type":"auth","result":"success"}', async () => {
  await withSim({}, async (sim) => {
    const client = await authed(sim);
    assert.equal(sim.stats.authOk, 1);
    client.ws.close();
  });
  await withSim({ legacy: { authSuccess: true } }, async (sim) => {
    const client = await RawClient.open(sim.url); // no ?api_key: the official CLI omits it
    client.send(authFrame());
    assert.deepEqual(await client.json(), { type: 'auth', result: 'success' });
    client.ws.close();
  });
});

test('each auth failure answers {"authenticated":false} and closes 1008, with its reason counted', async () => {
  const nowMs = 1_760_545_414_000;
  const ts = nowMs / 1000;
  await withSim({ keys: KEYS, now: () => nowMs }, async (sim) => {
    const used = randomBytes(16).toString('hex');
    const first = await authed(sim, authFrame({ nonce: used, ts }));
    first.ws.close();
    const cases: Array<[string, Record<string, unknown>]> = [
      ['bad_signature', authFrame({ ts, secret: 'qfex_secret_wrong' })],
      ['unknown_key', authFrame({ ts, publicKey: 'qfex_pub_nobody' })],
      ['stale_timestamp', authFrame({ ts: ts - 31 })],
      ['stale_timestamp', authFrame({ ts: ts + 31 })],
      ['replayed_nonce', authFrame({ ts, nonce: used })],
      ['bad_nonce', authFrame({ ts, nonce: 'not-hex!' })],
      ['bad_nonce', authFrame({ ts, nonce: 'a'.repeat(101) })],
      ['unknown_account', authFrame({ ts, accountId: '22222222-2222-2222-2222-222222222222' })],
      [
        'malformed',
        {
          type: 'auth',
          params: { hmac: { public_key: DEMO_PUBLIC_KEY, nonce: 'ab', unix_ts: String(ts), signature: 'x' } },
        },
      ],
    ];
    for (const [reason, frame] of cases) {
      const client = await RawClient.open(sim.url);
      client.send(frame);
      assert.deepEqual(await client.json(), { authenticated: false }, reason);
      assert.equal((await client.closed).code, 1008, reason);
      assert.equal(sim.stats.lastAuthFailure, reason);
    }
    assert.equal(sim.stats.authFailed, cases.length);
    assert.equal(sim.stats.authOk, 1);
    // The edges of the window and an uppercase signature are accepted.
    for (const frame of [authFrame({ ts: ts - 30 }), authFrame({ ts: ts + 30 })]) (await authed(sim, frame)).ws.close();
    const nonce = 'C0FFEE';
    (await authed(sim, authFrame({ ts, nonce, signature: sign(DEMO_SECRET_KEY, nonce, ts).toUpperCase() }))).ws.close();
  });
});

test('account_id selects the subaccount tier set; omitted means primary', async () => {
  const subTiers = [makeTier('SUBONLY-USD', 1, 1000), makeTier('SUBONLY-USD', 2, 1000)];
  await withSim({ keys: KEYS, universe: { primary: defaultUniverse(), [SUB]: subTiers } }, async (sim) => {
    const sub = await authed(sim, authFrame({ accountId: SUB }));
    sub.send({ type: 'get_available_leverage_levels', params: {} });
    const rows = (await sub.json()).available_leverage_levels_response;
    assert.deepEqual(
      rows.map((r: any) => `${r.symbol}/${r.leverage}`),
      ['SUBONLY-USD/1', 'SUBONLY-USD/2'],
    );
    const primary = await authed(sim);
    primary.send({ type: 'get_available_leverage_levels', params: { limit: 1 } });
    assert.equal((await primary.json()).available_leverage_levels_response[0].symbol, 'AAPL-USD');
    assert.deepEqual(
      sim.stats.lastRequests.map((r) => r.account),
      [SUB, 'primary'],
    );
    sub.ws.close();
    primary.ws.close();
  });
});

test('a JWT from the configured list is accepted; any other is refused', async () => {
  await withSim({ jwts: [{ token: 'eyJ.valid.token', accounts: ['primary'] }] }, async (sim) => {
    const ok = await RawClient.open(sim.url);
    ok.send({ type: 'auth', params: { jwt: 'eyJ.valid.token' } });
    assert.deepEqual(await ok.json(), { authenticated: true });
    const bad = await RawClient.open(sim.url);
    bad.send({ type: 'auth', params: { jwt: 'eyJ.forged.token' } });
    assert.deepEqual(await bad.json(), { authenticated: false });
    assert.equal(sim.stats.lastAuthFailure, 'bad_jwt');
    ok.ws.close();
  });
});

test('auth failure modes: err frame, bare close, HTTP 401 at the upgrade', async () => {
  await withSim({ authFailureMode: 'err_frame' }, async (sim) => {
    const client = await RawClient.open(sim.url);
    const frame = authFrame({ secret: 'wrong' });
    client.send(frame);
    const reply = await client.json();
    assert.equal(reply.err.error_code, 'PermissionDenied');
    assert.match(reply.err.message, /signature/);
    assert.deepEqual(reply.err.incoming_message, frame);
    assert.equal((await client.closed).code, 1008);
  });
  await withSim({ authFailureMode: 'close' }, async (sim) => {
    const client = await RawClient.open(sim.url);
    client.send(authFrame({ secret: 'wrong' }));
    assert.equal((await client.closed).code, 1008);
    await assert.rejects(client.next(10), /closed/);
  });
  await withSim({ authFailureMode: 'http_401' }, async (sim) => {
    await assert.rejects(RawClient.open(`${sim.url}/?api_key=qfex_pub_nobody`), /HTTP 401/);
    await assert.rejects(RawClient.open(sim.url), /HTTP 401/);
    (await authed(sim)).ws.close(); // a known api_key passes the upgrade
    assert.equal(sim.stats.lastAuthFailure, 'upgrade_rejected');
  });
});

test('injected auth rejection in each mode refuses valid credentials', async () => {
  await withSim({}, async (sim) => {
    sim.inject({ kind: 'reject_auth' });
    const a = await RawClient.open(sim.url);
    a.send(authFrame());
    assert.deepEqual(await a.json(), { authenticated: false });
    sim.inject({ kind: 'reject_auth', mode: 'err_frame' });
    const b = await RawClient.open(sim.url);
    b.send(authFrame());
    assert.equal((await b.json()).err.error_code, 'PermissionDenied');
    sim.inject({ kind: 'reject_auth', mode: 'http_401' });
    await assert.rejects(RawClient.open(`${sim.url}/?api_key=${DEMO_PUBLIC_KEY}`), /HTTP 401/);
    (await authed(sim)).ws.close(); // all used up
    assert.deepEqual(sim.stats.authFailures, { injected: 3 });
  });
});

test('strict mode refuses an api_key query that differs from hmac.public_key; the default accepts it', async () => {
  await withSim({ strict: true }, async (sim) => {
    const client = await RawClient.open(`${sim.url}/?api_key=qfex_pub_other`);
    client.send(authFrame());
    assert.deepEqual(await client.json(), { authenticated: false });
    assert.equal(sim.stats.lastAuthFailure, 'api_key_mismatch');
  });
  await withSim({}, async (sim) => {
    const client = await RawClient.open(`${sim.url}/?api_key=qfex_pub_other`);
    client.send(authFrame());
    assert.deepEqual(await client.json(), { authenticated: true });
    client.ws.close();
  });
});

test('commands before auth get PermissionDenied without closing; a second auth gets AlreadyAuthenticated', async () => {
  await withSim({}, async (sim) => {
    const client = await RawClient.open(sim.url);
    const request = { type: 'get_available_leverage_levels', params: { limit: 10, offset: 0 } };
    client.send(request);
    assert.deepEqual(await client.json(), {
      err: { error_code: 'PermissionDenied', message: 'not authenticated', incoming_message: request },
    });
    const auth = authFrame();
    client.send(auth);
    assert.deepEqual(await client.json(), { authenticated: true });
    client.send(authFrame());
    assert.equal((await client.json()).err.error_code, 'AlreadyAuthenticated');
    client.send(request);
    assert.equal((await client.json()).available_leverage_levels_response.length, 10);
    client.ws.close();
  });
});

test('an unauthenticated connection is closed with 1008 at the deadline; an unanswered auth does not stop it', async () => {
  // 1 s, not 40 ms: the authenticated connection below must get its auth answered within the deadline,
  // and a stall of a loaded machine between its connection and its auth frame must not end it first.
  const deadlineMs = 1000;
  await withSim({ authDeadlineMs: deadlineMs }, async (sim) => {
    // Counted from before the connection: the server's timer starts after this, so the bound holds
    // however late this loop sees the 'open' event.
    const started = Date.now();
    const idle = await RawClient.open(sim.url);
    const { code } = await idle.closed;
    assert.equal(code, 1008);
    assert.ok(Date.now() - started >= deadlineMs - 10);
    sim.inject({ kind: 'never_answer_auth' });
    const waiting = await RawClient.open(sim.url);
    waiting.send(authFrame());
    await assert.rejects(waiting.next(deadlineMs + 10_000), /closed/);
    assert.equal((await waiting.closed).code, 1008);
    // An authenticated connection outlives the deadline.
    const ok = await authed(sim);
    await assert.rejects(ok.next(deadlineMs + 500), /timeout/);
    assert.equal(ok.ws.readyState, WebSocket.OPEN);
    ok.ws.close();
  });
});

test('pings start after auth; a client that never pongs is dropped after two missed pongs', async () => {
  // 250 ms, not 15: the ponging client shares this process's loop with the server, and a stall of two
  // intervals of the loaded machine would count its pongs as missed and drop it too.
  await withSim({ pingIntervalMs: 250 }, async (sim) => {
    const pre = await RawClient.open(sim.url);
    const live = await authed(sim);
    await new Promise<void>((resolve) => live.ws.once('ping', () => resolve()));
    assert.equal(pre.pings, 0, 'no pings before auth');
    const mute = await authed(sim, authFrame(), { autoPong: false });
    const { code } = await mute.closed;
    assert.equal(code, 1006, 'terminated, no close frame');
    assert.ok(mute.pings >= 2 && mute.pings <= 3, `pings before the drop: ${mute.pings}`);
    assert.equal(live.ws.readyState, WebSocket.OPEN, 'the ponging client stays');
    live.ws.close();
    pre.ws.close();
  });
});

test('faults: stop_pings silences the server; ignore_client_pings leaves client pings unanswered', async () => {
  await withSim({ pingIntervalMs: 10 }, async (sim) => {
    sim.inject({ kind: 'stop_pings' });
    const silent = await authed(sim);
    const normal = await authed(sim);
    await new Promise<void>((resolve) => normal.ws.once('ping', () => resolve()));
    await new Promise<void>((resolve) => normal.ws.once('ping', () => resolve()));
    assert.equal(silent.pings, 0);
    silent.ws.close();
    normal.ws.close();
  });
  await withSim({}, async (sim) => {
    sim.inject({ kind: 'ignore_client_pings' });
    const deaf = await authed(sim);
    const normal = await authed(sim);
    const pong = new Promise<void>((resolve) => normal.ws.once('pong', () => resolve()));
    let deafPonged = false;
    deaf.ws.on('pong', () => (deafPonged = true));
    deaf.ws.ping();
    normal.ws.ping();
    await pong;
    // The deaf connection's ping was sent first on the same loopback; give it a little longer anyway.
    await assert.rejects(deaf.next(50), /timeout/);
    assert.equal(deafPonged, false);
    deaf.ws.close();
    normal.ws.close();
  });
});

test('close() sends 1001 to open connections and resolves', async () => {
  const sim = await startSimulator();
  const client = await authed(sim);
  await sim.close();
  assert.equal((await client.closed).code, 1001);
  await sim.close(); // idempotent
});

test('the simulator logs what it does but never a secret, a signature or a JWT', async () => {
  const { createLogger } = await import('../src/log.ts');
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (line: string) => void lines.push(line) } });
  const secret = 'qfex_secret_RECOGNISABLE_7f3a';
  const jwt = 'eyJ.RECOGNISABLE.jwt';
  await withSim(
    {
      logger,
      keys: [{ publicKey: 'qfex_pub_log', secretKey: secret }],
      jwts: [{ token: jwt }],
      authFailureMode: 'err_frame',
    },
    async (sim) => {
      const frame = authFrame({ publicKey: 'qfex_pub_log', secret });
      const signature = (frame.params as any).hmac.signature as string;
      const ok = await RawClient.open(sim.url);
      ok.send(frame);
      assert.deepEqual(await ok.json(), { authenticated: true });
      ok.send({ type: 'get_available_leverage_levels', params: { limit: 2 } });
      await ok.json();
      const replay = await RawClient.open(sim.url);
      replay.send(frame);
      assert.equal((await replay.json()).err.error_code, 'PermissionDenied');
      const viaJwt = await RawClient.open(sim.url);
      viaJwt.send({ type: 'auth', params: { jwt } });
      assert.deepEqual(await viaJwt.json(), { authenticated: true });
      sim.editTier('primary', 'META-USD', 1, { max_notional: 1 });
      ok.ws.close();
      viaJwt.ws.close();
      const text = lines.join('');
      assert.match(text, /authenticated/);
      assert.match(text, /replayed_nonce/);
      assert.match(text, /tier change/);
      for (const needle of [secret, signature, jwt]) {
        assert.equal(text.includes(needle), false, `leaked ${needle.slice(0, 12)}…`);
      }
    },
  );
});
