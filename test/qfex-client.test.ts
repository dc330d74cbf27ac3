/**
 * The QFEX client against the built-in simulator over real loopback sockets: authentication in
 * every documented shape, subaccounts, paging, every fault the client must classify, and secrets
 * never showing in logs or errors.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { TierwatchError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { openSession, type QfexClientOptions, type QfexSession } from '../src/qfex/client.ts';
import { fetchAllTiers } from '../src/qfex/paginate.ts';
import {
  DEMO_PUBLIC_KEY,
  DEMO_SECRET_KEY,
  startSimulator,
  type Simulator,
  type SimulatorOptions,
} from '../src/sim/index.ts';

const SECRET = 'qfex_secret_RECOGNISABLE_7f3a9c';
const PUBLIC = 'qfex_pub_test_client';

/** Every log line any test wrote, to search for secrets at the end. */
const logText: string[] = [];
const errorTexts: string[] = [];
function capturingLogger() {
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      logText.push(String(chunk));
      callback();
    },
  });
  return createLogger({ level: 'debug', destination });
}

const simulators: Simulator[] = [];
after(async () => {
  await Promise.all(simulators.map((sim) => sim.close()));
});

async function simulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator({
    keys: [{ publicKey: PUBLIC, secretKey: SECRET, accounts: ['primary'] }],
    pingIntervalMs: 1000,
    ...options,
  });
  simulators.push(sim);
  return sim;
}

function clientOptions(sim: Simulator, overrides: Partial<QfexClientOptions> = {}): QfexClientOptions {
  return {
    url: sim.url,
    credentials: { kind: 'hmac', publicKey: PUBLIC, secretKey: SECRET },
    timeouts: { connectMs: 2000, authMs: 2000, requestMs: 2000, idleMs: 5000 },
    logger: capturingLogger(),
    ...overrides,
  };
}

async function withSession<T>(options: QfexClientOptions, use: (session: QfexSession) => Promise<T>): Promise<T> {
  const session = await openSession(options);
  try {
    return await use(session);
  } finally {
    session.close();
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<TierwatchError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TierwatchError, `not a TierwatchError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    errorTexts.push(error.message, JSON.stringify(error.details ?? {}));
    return error;
  }
  assert.fail(`expected ${code}`);
}

const pageOptions = {
  pageSize: 1000,
  maxPages: 100,
  maxShiftRetries: 2,
  retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 50 },
};

test('HMAC auth, then a full sweep against a server that caps pages at 7 rows', async () => {
  const sim = await simulator({ maxPageSize: 7 });
  const expected = sim.tiers();
  const result = await withSession(clientOptions(sim), (session) =>
    fetchAllTiers((l, o) => session.requestLeveragePage(l, o), pageOptions),
  );
  assert.equal(result.tiers.length, expected.length);
  assert.deepEqual(
    result.tiers.map((tier) => [tier.symbol, tier.leverage, tier.max_notional, tier.exchange_id]),
    expected.map((tier) => [tier.symbol, tier.leverage, tier.max_notional, tier.id]),
  );
  assert.ok(sim.stats.lastRequests.every((request) => request.servedLimit === 7));
  assert.equal(sim.stats.authOk, 1);
});

test('every legacy form: old auth success shape, max_position, numeric leverage, flat errors', async () => {
  const sim = await simulator({
    legacy: { authSuccess: true, maxPosition: true, numericLeverage: true, flatErrors: true },
  });
  const expected = sim.tiers();
  await withSession(clientOptions(sim), async (session) => {
    const result = await fetchAllTiers((l, o) => session.requestLeveragePage(l, o), { ...pageOptions, pageSize: 50 });
    assert.deepEqual(
      result.tiers.map((tier) => [tier.symbol, tier.leverage, tier.max_notional]),
      expected.map((tier) => [tier.symbol, String(Number(tier.leverage)), tier.max_notional]),
    );
    sim.inject({ kind: 'error_reply', code: 'InvalidParameter', message: 'limit out of range' });
    await rejectsWith(session.requestLeveragePage(10, 0), 'QFEX_ERROR', /InvalidParameter: limit out of range/);
  });
});

test('a subaccount gets its own tiers; the primary account sends no account_id', async () => {
  const primary = [
    { id: 'p1', symbol: 'AAPL-USD', leverage: '1', initial_margin: 1, maintenance_margin: 0.5, max_notional: 100 },
  ];
  const sub = [
    { id: 's1', symbol: 'META-USD', leverage: '2', initial_margin: 0.5, maintenance_margin: 0.25, max_notional: 50 },
    { id: 's2', symbol: 'META-USD', leverage: '4', initial_margin: 0.25, maintenance_margin: 0.125, max_notional: 25 },
  ];
  const sim = await simulator({
    keys: [{ publicKey: PUBLIC, secretKey: SECRET, accounts: ['primary', '11111111-1111-1111-1111-111111111111'] }],
    universe: { primary, '11111111-1111-1111-1111-111111111111': sub },
  });
  const subRows = await withSession(clientOptions(sim, { accountId: '11111111-1111-1111-1111-111111111111' }), (s) =>
    s.requestLeveragePage(100, 0),
  );
  assert.deepEqual(
    subRows.map((row) => (row as { id: string }).id),
    ['s1', 's2'],
  );
  const primaryRows = await withSession(clientOptions(sim), (s) => s.requestLeveragePage(100, 0));
  assert.deepEqual(
    primaryRows.map((row) => (row as { id: string }).id),
    ['p1'],
  );
  await rejectsWith(openSession(clientOptions(sim, { accountId: 'not-mine' })), 'QFEX_AUTH_REJECTED');
});

test('auth rejected in every way the server can say it, never naming the secret', async () => {
  for (const mode of ['authenticated_false', 'err_frame', 'http_401', 'close'] as const) {
    const sim = await simulator({ authFailureMode: mode });
    const error = await rejectsWith(
      openSession(
        clientOptions(sim, { credentials: { kind: 'hmac', publicKey: PUBLIC, secretKey: 'qfex_secret_WRONG_e1d2' } }),
      ),
      'QFEX_AUTH_REJECTED',
    );
    assert.equal(error.retryable, false, mode);
    assert.ok(!error.message.includes('WRONG_e1d2'), mode);
    assert.equal(sim.stats.authFailed, 1, mode);
  }
});

test('an unknown key and an injected rejection are QFEX_AUTH_REJECTED', async () => {
  const sim = await simulator();
  await rejectsWith(
    openSession(clientOptions(sim, { credentials: { kind: 'hmac', publicKey: 'qfex_pub_nobody', secretKey: SECRET } })),
    'QFEX_AUTH_REJECTED',
    /authenticated":false/,
  );
  sim.inject({ kind: 'reject_auth', mode: 'err_frame' });
  await rejectsWith(openSession(clientOptions(sim)), 'QFEX_AUTH_REJECTED', /rejected the authentication with \w+/);
  assert.equal(sim.stats.lastAuthFailure, 'injected');
});

test('JWT auth works, and an expiry within 10 minutes is warned about without logging the token', async () => {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const nowMs = Date.UTC(2026, 5, 1, 12, 0, 0);
  const token = `${encode({ alg: 'ES256', typ: 'JWT' })}.${encode({ sub: 'u', exp: nowMs / 1000 + 300 })}.SIGNATURE_JWT_c4f1`;
  const sim = await simulator({ jwts: [{ token, accounts: ['primary'] }] });
  const lines: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _e, callback) {
        lines.push(String(chunk));
        logText.push(String(chunk));
        callback();
      },
    }),
  });
  const rows = await withSession(
    clientOptions(sim, { credentials: { kind: 'jwt', token }, logger, now: () => nowMs }),
    (s) => s.requestLeveragePage(5, 0),
  );
  assert.equal(rows.length, 5);
  const warning = lines
    .map((line) => JSON.parse(line))
    .find((entry) => entry.level === 'warn' && /expires within 10 minutes/.test(entry.msg));
  assert.equal(warning?.jwt_expires_at, '2026-06-01T12:05:00.000Z');
  assert.ok(!lines.join('').includes('SIGNATURE_JWT_c4f1'));
  await rejectsWith(
    openSession(clientOptions(sim, { credentials: { kind: 'jwt', token: 'a.b.c' } })),
    'QFEX_AUTH_REJECTED',
  );
});

test('the socket dropped mid-sweep is QFEX_CLOSED (retryable), naming the close code', async () => {
  const sim = await simulator({ maxPageSize: 5 });
  sim.inject({ kind: 'drop_at_page', page: 3 });
  const error = await withSession(clientOptions(sim), (session) =>
    rejectsWith(
      fetchAllTiers((l, o) => session.requestLeveragePage(l, o), pageOptions),
      'QFEX_CLOSED',
      /code 1006/,
    ),
  );
  assert.equal(error.retryable, true);
  sim.inject({ kind: 'drop_before_page', page: 2, closeCode: 1011 });
  await withSession(clientOptions(sim), (session) =>
    rejectsWith(
      fetchAllTiers((l, o) => session.requestLeveragePage(l, o), pageOptions),
      'QFEX_CLOSED',
      /code 1011/,
    ),
  );
});

test('a page that never comes is QFEX_TIMEOUT, and the session is not reused after it', async () => {
  const sim = await simulator();
  sim.inject({ kind: 'never_answer_page', page: 2 });
  // 2 s, not 0.4 s: the first page must arrive within it even when the loaded machine stalls.
  await withSession(
    clientOptions(sim, { timeouts: { connectMs: 2000, authMs: 2000, requestMs: 2000, idleMs: 5000 } }),
    async (session) => {
      await session.requestLeveragePage(3, 0);
      const error = await rejectsWith(session.requestLeveragePage(3, 2), 'QFEX_TIMEOUT', /offset 2/);
      assert.equal(error.retryable, true);
      await rejectsWith(session.requestLeveragePage(3, 2), 'QFEX_TIMEOUT');
    },
  );
});

test('an auth reply that never comes is QFEX_TIMEOUT', async () => {
  const sim = await simulator();
  sim.inject({ kind: 'never_answer_auth' });
  await rejectsWith(
    openSession(clientOptions(sim, { timeouts: { connectMs: 2000, authMs: 80, requestMs: 2000, idleMs: 5000 } })),
    'QFEX_TIMEOUT',
    /auth/,
  );
});

test("the server's unauthenticated deadline closing the socket during auth is QFEX_AUTH_REJECTED", async () => {
  const sim = await simulator({ authDeadlineMs: 50 });
  sim.inject({ kind: 'never_answer_auth' });
  await rejectsWith(openSession(clientOptions(sim)), 'QFEX_AUTH_REJECTED', /code 1008/);
});

test('a server that neither pings nor answers pings is noticed: QFEX_CLOSED', async () => {
  const sim = await simulator();
  sim.inject({ kind: 'stop_pings' });
  sim.inject({ kind: 'ignore_client_pings' });
  sim.inject({ kind: 'never_answer_page' });
  await withSession(
    clientOptions(sim, { timeouts: { connectMs: 2000, authMs: 2000, requestMs: 10_000, idleMs: 120 } }),
    (session) =>
      rejectsWith(session.requestLeveragePage(10, 0), 'QFEX_CLOSED', /no frame \(pings included\) for 120 ms/),
  );
});

test('pings keep a slow answer alive: a page delayed past idleMs still arrives', async () => {
  const sim = await simulator({ pingIntervalMs: 25 });
  // idleMs 1.5 s, not 0.4 s: after a stall of the loaded machine the idle timer runs before the
  // pings waiting in the socket are read; the page comes well past it.
  sim.inject({ kind: 'delay_page', ms: 2500 });
  sim.inject({ kind: 'ignore_client_pings' });
  const rows = await withSession(
    clientOptions(sim, { timeouts: { connectMs: 2000, authMs: 2000, requestMs: 6000, idleMs: 1500 } }),
    (s) => s.requestLeveragePage(4, 0),
  );
  assert.equal(rows.length, 4);
  assert.ok(sim.stats.pingsSent >= 10);
});

test('our own pings keep a quiet but healthy server alive', async () => {
  const sim = await simulator({ pingIntervalMs: 60_000 });
  // As above: our pings go every idleMs / 3, a stall longer than the rest of idleMs must not end it.
  sim.inject({ kind: 'delay_page', ms: 2500 });
  const rows = await withSession(
    clientOptions(sim, { timeouts: { connectMs: 2000, authMs: 2000, requestMs: 6000, idleMs: 1500 } }),
    (s) => s.requestLeveragePage(4, 0),
  );
  assert.equal(rows.length, 4);
  assert.ok(sim.stats.pongsReceived === 0 && sim.stats.pingsSent === 0);
});

test('exchange error frames: RateLimited with its hint, ServerError, others; the session stays usable', async () => {
  const sim = await simulator();
  await withSession(clientOptions(sim), async (session) => {
    sim.inject({ kind: 'error_reply', code: 'RateLimited', retryAfterMs: 120 });
    const limited = await rejectsWith(session.requestLeveragePage(5, 0), 'QFEX_RATE_LIMITED');
    assert.equal(limited.retryable, true);
    assert.equal(limited.details?.retryAfterMs, 120);
    sim.inject({ kind: 'error_reply', code: 'ServerError' });
    assert.equal((await rejectsWith(session.requestLeveragePage(5, 0), 'QFEX_SERVER_ERROR')).retryable, true);
    sim.inject({ kind: 'error_reply', code: 'PermissionDenied', message: 'no access' });
    const other = await rejectsWith(session.requestLeveragePage(5, 0), 'QFEX_ERROR', /PermissionDenied: no access/);
    assert.equal(other.details?.exchangeCode, 'PermissionDenied');
    assert.equal((await session.requestLeveragePage(5, 0)).length, 5);
  });
});

test('RateLimited once, then the pager retries after the hint and completes', async () => {
  const sim = await simulator({ maxPageSize: 10 });
  sim.inject({ kind: 'error_reply', page: 2, code: 'RateLimited', retryAfterMs: 30 });
  const slept: number[] = [];
  const result = await withSession(clientOptions(sim), (session) =>
    fetchAllTiers((l, o) => session.requestLeveragePage(l, o), {
      ...pageOptions,
      sleep: async (ms) => {
        slept.push(ms);
        await new Promise((resolve) => setTimeout(resolve, ms));
      },
    }),
  );
  assert.equal(result.tiers.length, sim.tiers().length);
  assert.deepEqual(slept, [30]);
});

test('malformed frames are QFEX_PROTOCOL (binary, not JSON, wrong shape); a frame above maxPayloadBytes is QFEX_FRAME_TOO_LARGE', async () => {
  const sim = await simulator();
  for (const frame of ['binary', 'non_json', 'wrong_shape', 'oversized'] as const) {
    sim.inject({ kind: 'bad_frame', frame, bytes: 200_000 });
    await withSession(clientOptions(sim, { maxPayloadBytes: 100_000 }), (session) =>
      rejectsWith(
        session.requestLeveragePage(5, 0),
        frame === 'oversized' ? 'QFEX_FRAME_TOO_LARGE' : 'QFEX_PROTOCOL',
        frame === 'oversized' ? /larger than/ : undefined,
      ),
    );
  }
});

test('a response type we never asked for is skipped and counted: the request waits for its own answer', async () => {
  const sim = await simulator();
  sim.inject({ kind: 'bad_frame', frame: 'unexpected_key' });
  const ignored: string[] = [];
  // 2 s, not 0.3 s: after a stall the request timer would run before the ignored frame is read.
  await withSession(
    clientOptions(sim, {
      timeouts: { connectMs: 2000, authMs: 2000, requestMs: 2000, idleMs: 5000 },
      onIgnoredFrame: (type) => ignored.push(type),
    }),
    (session) => rejectsWith(session.requestLeveragePage(5, 0), 'QFEX_TIMEOUT'),
  );
  assert.deepEqual(ignored, ['unknown']);
});

test('a malformed row fails the sweep with ROW_INVALID', async () => {
  const sim = await simulator({ maxPageSize: 10 });
  sim.inject({
    kind: 'malformed_row',
    page: 2,
    index: 3,
    row: { symbol: 'META-USD', leverage: '3', initial_margin: 'NaN', maintenance_margin: 0.1, max_notional: 5 },
  });
  await withSession(clientOptions(sim), (session) =>
    rejectsWith(
      fetchAllTiers((l, o) => session.requestLeveragePage(l, o), pageOptions),
      'ROW_INVALID',
      /offset 12 .*initial_margin/,
    ),
  );
});

test('a list shifted during paging (insert and delete before the offset) is detected and re-read', async () => {
  for (const kind of ['shift_insert', 'shift_delete'] as const) {
    const sim = await simulator({ maxPageSize: 6 });
    sim.inject({ kind, afterPage: 2 });
    const result = await withSession(clientOptions(sim), (session) =>
      fetchAllTiers((l, o) => session.requestLeveragePage(l, o), pageOptions),
    );
    const now = sim.tiers();
    assert.deepEqual(
      result.tiers.map((tier) => `${tier.symbol}/${tier.leverage}`),
      now.map((tier) => `${tier.symbol}/${String(Number(tier.leverage))}`),
      kind,
    );
    assert.ok(result.requests > result.pages, `${kind}: the sweep was restarted`);
  }
});

test('an exchange that always returns a full page hits PAGE_LIMIT_REACHED; an empty one EMPTY_SWEEP', async () => {
  const sim = await simulator();
  sim.inject({ kind: 'infinite_list' });
  await withSession(clientOptions(sim), (session) =>
    rejectsWith(
      fetchAllTiers((l, o) => session.requestLeveragePage(l, o), { ...pageOptions, pageSize: 20, maxPages: 6 }),
      'PAGE_LIMIT_REACHED',
    ),
  );
  sim.inject({ kind: 'empty_list' });
  await withSession(clientOptions(sim), (session) =>
    rejectsWith(
      fetchAllTiers((l, o) => session.requestLeveragePage(l, o), pageOptions),
      'EMPTY_SWEEP',
    ),
  );
});

test('aborting closes the socket and rejects the pending page with ABORTED', async () => {
  const sim = await simulator();
  sim.inject({ kind: 'never_answer_page' });
  const controller = new AbortController();
  await withSession(clientOptions(sim, { signal: controller.signal }), async (session) => {
    const pending = session.requestLeveragePage(5, 0);
    setImmediate(() => controller.abort());
    await rejectsWith(pending, 'ABORTED');
  });
  await rejectsWith(openSession(clientOptions(sim, { signal: controller.signal })), 'ABORTED');
});

test('close() is idempotent and rejects a pending page with QFEX_CLOSED', async () => {
  const sim = await simulator();
  sim.inject({ kind: 'never_answer_page' });
  const session = await openSession(clientOptions(sim));
  const pending = session.requestLeveragePage(5, 0);
  session.close();
  session.close();
  await rejectsWith(pending, 'QFEX_CLOSED');
  await rejectsWith(session.requestLeveragePage(5, 0), 'QFEX_CLOSED');
});

test('no log line or error message in this file carried the secret key or a signature', () => {
  assert.ok(logText.length > 10, 'the tests logged something');
  const everything = logText.join('\n') + errorTexts.join('\n');
  for (const secret of [SECRET, 'WRONG_e1d2', DEMO_SECRET_KEY, 'SIGNATURE_JWT_c4f1']) {
    assert.ok(!everything.includes(secret), `found ${secret}`);
    assert.ok(!everything.includes(JSON.stringify(secret).slice(1, -1)));
  }
  assert.ok(!/"signature"\s*:\s*"[0-9a-f]{64}"/.test(everything), 'a signature was logged');
  assert.equal(DEMO_PUBLIC_KEY.length > 0, true);
});
