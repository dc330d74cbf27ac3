/**
 * The fault matrix of issue 5: one sweep through `sweepAccount` per fault, against the simulator
 * over a real socket into a real SQLite file. Each row of the table says what must happen: the
 * sweep is retried and succeeds, or it fails with a given error code in the ledger. Either way a
 * failed attempt leaves the tier history exactly as it was, and the next sweep once the fault has
 * cleared records exactly the true changes: the net difference between the simulator's tiers at
 * the last recorded sweep and now.
 *
 * One simulator (plus one TLS simulator) and one database serve the whole table; every case makes a
 * small true change first, so "records exactly the true changes" is never vacuous. Sleeps between
 * retries go through an injected recorder (no wall time; the delays asked for are asserted).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sweepAccount, type SweepDeps, type SweepResult } from '../src/collect/sweep.ts';
import type { ErrorCode } from '../src/errors.ts';
import { signHmac } from '../src/qfex/auth.ts';
import { openSession, type QfexClientOptions } from '../src/qfex/client.ts';
import { makeTier, type Fault, type SimulatorOptions } from '../src/sim/index.ts';
import { startHarness, type Harness } from './helpers/harness.ts';
import {
  databaseFiles,
  findLeaks,
  historyDump,
  ledgerRow,
  makeTestTls,
  netChanges,
  recordedChanges,
  switchableLookup,
  type TestTls,
} from './helpers/faults.ts';

// Recognisable credentials: the end of the file searches every output for them.
const PUBLIC_KEY = 'qfex_pub_fault_matrix';
const SECRET_KEY = `qfex_secret_MATRIXCANARY_${randomBytes(6).toString('hex')}`;

/** A row that passes every validation rule; each malformed-row case breaks one. */
const GOOD_ROW = { id: 'f00d', symbol: 'ZZTOP-USD', leverage: '7', initial_margin: 0.5, maintenance_margin: 0.25, max_notional: 1000 };

interface Matrix {
  h: Harness;
  deps: SweepDeps;
  baseEnv: Record<string, string>;
  /** The simulator's tiers at the last successful sweep: what the history holds. */
  recorded: ReturnType<Harness['sim']['tiers']>;
  /** Delays the sweep asked to sleep, in order. */
  sleeps: number[];
  /** Every signature the client computed (from the nonce and clock it was given). */
  signatures: Set<string>;
  lookup: ReturnType<typeof switchableLookup>;
  /** Switches a case may set; reset after every sweep. */
  redirectUrl: string | null;
  fixedNonce: Buffer | null;
  trueChanges: number;
}

interface Before {
  connections: number;
  errorsSent: Record<string, number>;
  pageRequests: number;
}

interface FaultCase {
  name: string;
  /** Faults injected just before the sweep. */
  faults?: Fault[];
  /** Anything else to arrange (switches, a consumed nonce...). */
  arrange?: (m: Matrix) => void | Promise<void>;
  /** Settings for this sweep on top of the matrix's base environment. */
  env?: Record<string, string>;
  /** 'ok' = retried (or tolerated) and succeeds; otherwise the code in the result and the ledger. */
  expect: 'ok' | ErrorCode;
  /** Extra assertions on what happened. */
  verify?: (result: SweepResult, m: Matrix, before: Before) => void;
  /** Settings of the next sweep, once the fault has cleared (default: the base environment). */
  recoverEnv?: Record<string, string>;
}

let clockOffsetMs = 0;
let dir = '';
let tls: TestTls;
let plain: Matrix;
let secure: Matrix;
let stallServer: Server;
const stallSockets: Socket[] = [];
let stallPort = 0;
let refusedPort = 0;

async function matrix(simOptions: SimulatorOptions, url: (h: Harness) => string): Promise<Matrix> {
  const h = await startHarness(
    { keys: [{ publicKey: PUBLIC_KEY, secretKey: SECRET_KEY }], ...simOptions },
    { QFEX_PUBLIC_KEY: PUBLIC_KEY, QFEX_SECRET_KEY: SECRET_KEY, LOG_LEVEL: 'debug' },
  );
  const lookup = switchableLookup();
  const m: Matrix = {
    h,
    baseEnv: { QFEX_WS_URL: url(h) },
    recorded: [],
    sleeps: [],
    signatures: new Set(),
    lookup,
    redirectUrl: null,
    fixedNonce: null,
    trueChanges: 0,
    deps: undefined as unknown as SweepDeps,
  };
  m.deps = {
    store: h.store,
    logger: h.logger,
    lookup: lookup.lookup,
    async sleep(ms) {
      m.sleeps.push(ms);
    },
    openSession(options: QfexClientOptions) {
      let lastNow = 0;
      return openSession({
        ...options,
        ...(m.redirectUrl === null ? {} : { url: m.redirectUrl }),
        now: () => (lastNow = Date.now()),
        randomBytes: (n) => {
          const bytes = m.fixedNonce ?? randomBytes(n);
          // buildAuthMessage reads the clock right before it draws the nonce: this is the signature sent.
          m.signatures.add(signHmac(SECRET_KEY, bytes.toString('hex'), Math.floor(lastNow / 1000)));
          return bytes;
        },
      });
    },
  };
  return m;
}

/** A small true change in the simulator, different for every case. */
function trueChange(m: Matrix): void {
  const n = ++m.trueChanges;
  const tiers = m.h.sim.tiers();
  const target = tiers[(n * 7) % tiers.length]!;
  m.h.sim.editTier('primary', target.symbol, target.leverage, { max_notional: target.max_notional + 1000 });
  if (n % 3 === 1) m.h.sim.listSymbol('primary', `F${n}-USD`, { levels: [1, 2] });
  if (n % 3 === 2) {
    const victim = tiers[(n * 13) % tiers.length]!;
    if (victim.symbol !== target.symbol || victim.leverage !== target.leverage) m.h.sim.removeTier('primary', victim.symbol, victim.leverage);
  }
}

function assertRecordsTrueChanges(m: Matrix, result: SweepResult, label: string): void {
  if (!result.ok) assert.fail(`${label}: sweep failed with ${result.error.code}: ${result.error.message}`);
  const now = m.h.sim.tiers();
  assert.deepEqual(recordedChanges(result.changes), netChanges(m.recorded, now), `${label}: recorded changes`);
  assert.ok(result.changes.length > 0, `${label}: the case's true change must be recorded`);
  const row = ledgerRow(m.h.db.sqlite, result.runId);
  assert.equal(row.status, 'ok');
  assert.equal(row.changes, result.changes.length);
  m.recorded = now;
}

/** runCase as a node:test body. */
function caseBody(m: Matrix, c: FaultCase): () => Promise<void> {
  return async () => {
    await runCase(m, c);
  };
}

async function runCase(m: Matrix, c: FaultCase): Promise<SweepResult> {
  const { h } = m;
  trueChange(m);
  const history = historyDump(h.db.sqlite);
  const before: Before = { connections: h.sim.stats.connections, errorsSent: { ...h.sim.stats.errorsSent }, pageRequests: h.sim.stats.pageRequests };
  m.sleeps.length = 0;
  for (const fault of c.faults ?? []) h.sim.inject(fault);
  await c.arrange?.(m);
  let result: SweepResult;
  try {
    result = await sweepAccount(h.config({ ...m.baseEnv, ...c.env }), 'primary', m.deps);
  } finally {
    m.lookup.failing = false;
    m.redirectUrl = null;
    m.fixedNonce = null;
    clockOffsetMs = 0;
    h.sim.clearFaults();
  }

  if (c.expect === 'ok') {
    assertRecordsTrueChanges(m, result, c.name);
  } else {
    assert.equal(result.ok, false, `${c.name}: the sweep should have failed with ${c.expect}`);
    if (!result.ok) assert.equal(result.error.code, c.expect, result.error.message);
    const row = ledgerRow(h.db.sqlite, result.runId);
    assert.equal(row.status, 'failed');
    assert.equal(row.error_code, c.expect);
    assert.ok(row.error_message !== null && row.error_message.length > 0, 'the ledger says why');
    assert.deepEqual(historyDump(h.db.sqlite), history, `${c.name}: a failed sweep must not change the history`);
  }
  c.verify?.(result, m, before);

  if (c.expect !== 'ok') {
    // The fault has cleared: the next sweep records exactly what changed since the last good one.
    assertRecordsTrueChanges(m, await sweepAccount(h.config({ ...m.baseEnv, ...c.recoverEnv }), 'primary', m.deps), `${c.name}, next sweep`);
  }
  return result;
}

function delta(before: Before, m: Matrix): { connections: number; pageRequests: number; errors: (code: string) => number } {
  return {
    connections: m.h.sim.stats.connections - before.connections,
    pageRequests: m.h.sim.stats.pageRequests - before.pageRequests,
    errors: (code) => (m.h.sim.stats.errorsSent[code] ?? 0) - (before.errorsSent[code] ?? 0),
  };
}

function authFailure(reason: string) {
  return (_result: SweepResult, m: Matrix, before: Before) => {
    assert.equal(m.h.sim.stats.lastAuthFailure, reason);
    assert.equal(delta(before, m).connections, 1, 'an auth rejection is not retried');
  };
}

function messageMatches(pattern: RegExp) {
  return (result: SweepResult) => {
    if (!result.ok) assert.match(result.error.message, pattern);
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tierwatch-fault-matrix-'));
  tls = makeTestTls(dir);
  // maxPageSize 7 below the requested 1000: every sweep of the plain matrix pages under a server cap.
  plain = await matrix({ maxPageSize: 7, authDeadlineMs: 1500, now: () => Date.now() + clockOffsetMs }, (h) => `ws://localhost:${h.sim.port}`);
  secure = await matrix({ tls: { key: tls.key, cert: tls.cert } }, (h) => h.sim.url);
  secure.baseEnv.QFEX_CA_FILE = tls.caFile;
  stallServer = createServer((socket) => stallSockets.push(socket));
  stallServer.listen(0, '127.0.0.1');
  await once(stallServer, 'listening');
  stallPort = (stallServer.address() as { port: number }).port;
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  refusedPort = (closed.address() as { port: number }).port;
  await new Promise((resolve) => closed.close(resolve));
  // The first sweep of each: everything is added.
  for (const m of [plain, secure]) {
    const first = await sweepAccount(m.h.config(m.baseEnv), 'primary', m.deps);
    assertRecordsTrueChanges(m, first, 'first sweep');
  }
});

after(async () => {
  for (const socket of stallSockets) socket.destroy();
  await new Promise((resolve) => stallServer?.close(resolve));
  await plain?.h.close();
  await secure?.h.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Short enough to keep the matrix fast, long enough that a loaded machine never times out a page that does come.
const FAST_TIMEOUTS = { TIERWATCH_AUTH_TIMEOUT: '400ms', TIERWATCH_REQUEST_TIMEOUT: '400ms' };

const NETWORK_AND_AUTH: FaultCase[] = [
  {
    name: 'connection refused: retried on a fresh connection, bounded, then QFEX_CONNECT',
    arrange: (m) => void (m.redirectUrl = `ws://localhost:${refusedPort}`),
    env: { TIERWATCH_SWEEP_RETRIES: '2' },
    expect: 'QFEX_CONNECT',
    verify: (result, m) => {
      messageMatches(/ECONNREFUSED/)(result);
      assert.equal(m.sleeps.length, 2, 'two fresh-connection retries, then the failure');
      assert.ok(m.sleeps.every((ms) => ms <= 20), 'backoff capped by TIERWATCH_BACKOFF_MAX');
    },
  },
  {
    name: 'a host name that does not resolve (injected resolver): QFEX_CONNECT',
    arrange: (m) => void (m.lookup.failing = true),
    env: { TIERWATCH_SWEEP_RETRIES: '0' },
    expect: 'QFEX_CONNECT',
    verify: (result, m, before) => {
      messageMatches(/ENOTFOUND/)(result);
      assert.equal(delta(before, m).connections, 0, 'nothing reached the simulator');
      assert.equal(m.lookup.names.at(-1), 'localhost');
    },
  },
  {
    name: 'a name that fails to resolve once: retried and succeeds',
    arrange: (m) => {
      m.lookup.failing = true;
      // The resolver recovers right after its first answer, as a flaky DNS server would.
      const original = m.lookup.lookup;
      m.deps.lookup = ((hostname, options, callback) => {
        original(hostname, options, callback);
        m.lookup.failing = false;
        m.deps.lookup = original;
      });
    },
    expect: 'ok',
    verify: (_result, m) => assert.equal(m.sleeps.length, 1),
  },
  {
    name: 'wrong secret: QFEX_AUTH_REJECTED, not retried',
    env: { QFEX_SECRET_KEY: 'qfex_secret_not_the_right_one' },
    expect: 'QFEX_AUTH_REJECTED',
    verify: authFailure('bad_signature'),
  },
  {
    name: 'unknown public key: QFEX_AUTH_REJECTED',
    env: { QFEX_PUBLIC_KEY: 'qfex_pub_nobody_knows' },
    expect: 'QFEX_AUTH_REJECTED',
    verify: authFailure('unknown_key'),
  },
  {
    name: 'stale timestamp (the exchange clock is 10 minutes ahead): QFEX_AUTH_REJECTED',
    arrange: () => void (clockOffsetMs = 10 * 60_000),
    expect: 'QFEX_AUTH_REJECTED',
    verify: authFailure('stale_timestamp'),
  },
  {
    name: 'replayed nonce: QFEX_AUTH_REJECTED',
    async arrange(m) {
      m.fixedNonce = Buffer.alloc(16, 0x5a);
      // Someone (a replaying attacker, or a broken random source) used this nonce a moment ago.
      const session = await m.deps.openSession!({
        url: m.baseEnv.QFEX_WS_URL!,
        credentials: { kind: 'hmac', publicKey: PUBLIC_KEY, secretKey: SECRET_KEY },
        timeouts: { connectMs: 2000, authMs: 2000, requestMs: 2000, idleMs: 5000 },
        lookup: m.lookup.lookup,
      });
      session.close();
    },
    expect: 'QFEX_AUTH_REJECTED',
    verify: (_result, m) => assert.equal(m.h.sim.stats.lastAuthFailure, 'replayed_nonce'),
  },
  {
    name: 'no reply to the auth message, once: retried and succeeds',
    faults: [{ kind: 'never_answer_auth' }],
    env: FAST_TIMEOUTS,
    expect: 'ok',
    verify: (_result, m, before) => assert.equal(delta(before, m).connections, 2),
  },
  {
    name: 'no reply to the auth message, ever: QFEX_TIMEOUT after bounded retries',
    faults: [{ kind: 'never_answer_auth', persistent: true }],
    env: { ...FAST_TIMEOUTS, TIERWATCH_SWEEP_RETRIES: '1' },
    expect: 'QFEX_TIMEOUT',
    verify: (result, m, before) => {
      messageMatches(/auth message/)(result);
      assert.equal(delta(before, m).connections, 2);
    },
  },
  {
    name: '{"authenticated":false}: QFEX_AUTH_REJECTED',
    faults: [{ kind: 'reject_auth', mode: 'authenticated_false' }],
    expect: 'QFEX_AUTH_REJECTED',
    verify: authFailure('injected'),
  },
  {
    name: 'an error frame answering auth (echoing the auth message): QFEX_AUTH_REJECTED',
    faults: [{ kind: 'reject_auth', mode: 'err_frame' }],
    expect: 'QFEX_AUTH_REJECTED',
    verify: (result, m, before) => {
      messageMatches(/PermissionDenied/)(result);
      authFailure('injected')(result, m, before);
    },
  },
  {
    name: 'the socket closed during auth: QFEX_AUTH_REJECTED',
    faults: [{ kind: 'reject_auth', mode: 'close' }],
    expect: 'QFEX_AUTH_REJECTED',
    verify: authFailure('injected'),
  },
  {
    name: 'HTTP 401 at the upgrade: QFEX_AUTH_REJECTED',
    faults: [{ kind: 'reject_auth', mode: 'http_401' }],
    expect: 'QFEX_AUTH_REJECTED',
    verify: messageMatches(/HTTP 401/),
  },
  {
    name: "the server's unauthenticated deadline (1.5 s here) closes the socket: QFEX_AUTH_REJECTED naming it",
    faults: [{ kind: 'never_answer_auth' }],
    env: { TIERWATCH_AUTH_TIMEOUT: '5s' },
    expect: 'QFEX_AUTH_REJECTED',
    verify: messageMatches(/authentication deadline exceeded/),
  },
];

const DROPS_AND_SILENCE: FaultCase[] = [
  {
    name: 'the socket dropped before page 1, once: retried and succeeds',
    faults: [{ kind: 'drop_before_page', page: 1 }],
    expect: 'ok',
    verify: (_result, m, before) => assert.equal(delta(before, m).connections, 2),
  },
  {
    name: 'the socket dropped before page 1 on every connection: QFEX_CLOSED after bounded retries',
    faults: [{ kind: 'drop_before_page', page: 1, persistent: true }],
    env: { TIERWATCH_SWEEP_RETRIES: '2' },
    expect: 'QFEX_CLOSED',
    verify: (_result, m, before) => assert.equal(delta(before, m).connections, 3),
  },
  {
    name: 'the socket dropped after the last page, before the commit: the sweep is complete and stored',
    // The pager's last page carries the one overlap row (it is never empty), so "after the last
    // page" is "before the page after it". With the server cap of 7: 7 rows, then 6 new per page.
    arrange: (m) => m.h.sim.inject({ kind: 'drop_before_page', page: 2 + Math.ceil((m.h.sim.tiers().length - 7) / 6) + 1 }),
    expect: 'ok',
    verify: (_result, m, before) => {
      assert.equal(delta(before, m).connections, 1, 'nothing to retry: every page had arrived');
      assert.equal(m.h.sim.firedFaults().at(-1)?.kind, 'drop_before_page', 'the drop happened');
      assert.deepEqual(m.h.sim.pendingFaults(), []);
    },
  },
  {
    name: 'a page that never comes, once: QFEX_TIMEOUT then retried and succeeds',
    faults: [{ kind: 'never_answer_page', page: 2 }],
    env: FAST_TIMEOUTS,
    expect: 'ok',
    verify: (_result, m, before) => assert.equal(delta(before, m).connections, 2),
  },
  {
    name: 'a page that never comes, on every connection: QFEX_TIMEOUT',
    faults: [{ kind: 'never_answer_page', persistent: true }],
    env: { ...FAST_TIMEOUTS, TIERWATCH_SWEEP_RETRIES: '0' },
    expect: 'QFEX_TIMEOUT',
    verify: messageMatches(/no leverage page/),
  },
  {
    name: 'a server that stops answering pings (and sends none) while a page is awaited: QFEX_CLOSED',
    faults: [{ kind: 'stop_pings' }, { kind: 'ignore_client_pings' }, { kind: 'never_answer_page', page: 1 }],
    env: { TIERWATCH_IDLE_TIMEOUT: '300ms', TIERWATCH_REQUEST_TIMEOUT: '10s', TIERWATCH_SWEEP_RETRIES: '0' },
    expect: 'QFEX_CLOSED',
    verify: messageMatches(/went silent/),
  },
];

const EXCHANGE_ERRORS: FaultCase[] = [
  {
    name: 'RateLimited with a retry-after hint: honoured, then succeeds',
    faults: [{ kind: 'error_reply', page: 2, code: 'RateLimited', retryAfterMs: 15 }],
    expect: 'ok',
    verify: (_result, m, before) => {
      assert.deepEqual(m.sleeps, [15], 'the hint (15 ms) is the delay');
      assert.equal(delta(before, m).connections, 1, 'the same connection is kept');
      assert.equal(delta(before, m).errors('RateLimited'), 1);
    },
  },
  {
    name: 'RateLimited with a hint above TIERWATCH_BACKOFF_MAX: the delay is bounded',
    faults: [{ kind: 'error_reply', page: 1, code: 'RateLimited', retryAfterMs: 60_000 }],
    expect: 'ok',
    verify: (_result, m) => assert.deepEqual(m.sleeps, [20]),
  },
  {
    name: 'RateLimited on every request: QFEX_RATE_LIMITED after TIERWATCH_PAGE_RETRIES, no fresh connection',
    faults: [{ kind: 'error_reply', code: 'RateLimited', retryAfterMs: 5, persistent: true }],
    env: { TIERWATCH_PAGE_RETRIES: '3' },
    expect: 'QFEX_RATE_LIMITED',
    verify: (_result, m, before) => {
      assert.deepEqual(m.sleeps, [5, 5, 5]);
      assert.equal(delta(before, m).errors('RateLimited'), 4);
      assert.equal(delta(before, m).connections, 1);
    },
  },
  {
    name: 'ServerError once: retried and succeeds',
    faults: [{ kind: 'error_reply', page: 3, code: 'ServerError' }],
    expect: 'ok',
    verify: (_result, m) => assert.equal(m.sleeps.length, 1),
  },
  {
    name: 'ServerError on every request: QFEX_SERVER_ERROR, bounded',
    faults: [{ kind: 'error_reply', code: 'ServerError', persistent: true }],
    env: { TIERWATCH_PAGE_RETRIES: '2' },
    expect: 'QFEX_SERVER_ERROR',
    verify: (_result, m, before) => {
      assert.equal(delta(before, m).errors('ServerError'), 3);
      assert.ok(m.sleeps.every((ms) => ms <= 20));
    },
  },
  {
    name: 'InvalidParameter: QFEX_ERROR, not retried',
    faults: [{ kind: 'error_reply', page: 1, code: 'InvalidParameter' }],
    expect: 'QFEX_ERROR',
    verify: (result, m, before) => {
      messageMatches(/InvalidParameter/)(result);
      assert.equal(delta(before, m).pageRequests, 1);
      assert.deepEqual(m.sleeps, []);
    },
  },
];

const BAD_FRAMES: FaultCase[] = (
  [
    ['non_json', /not JSON/],
    ['wrong_shape', /not an array/],
    ['binary', /binary/],
  ] as const
).map(([frame, pattern]): FaultCase => ({
  name: `a ${frame} frame instead of page 2: QFEX_PROTOCOL`,
  faults: [{ kind: 'bad_frame', page: 2, frame }],
  expect: 'QFEX_PROTOCOL',
  verify: messageMatches(pattern),
}));
BAD_FRAMES.push(
  {
    name: 'an oversized frame (5 MiB, above the default 4 MiB TIERWATCH_MAX_FRAME_BYTES): QFEX_FRAME_TOO_LARGE',
    faults: [{ kind: 'bad_frame', page: 1, frame: 'oversized', bytes: 5 * 1024 * 1024 }],
    expect: 'QFEX_FRAME_TOO_LARGE',
    verify: messageMatches(/larger than the accepted maximum/),
  },
  {
    // Issue 10: a response type we never asked for answers nothing; the page it displaced never
    // comes, so the request times out and a fresh connection reads the list.
    name: 'an unexpected_key frame (a response we never asked for) instead of page 2: skipped, then a fresh connection succeeds',
    faults: [{ kind: 'bad_frame', page: 2, frame: 'unexpected_key' }],
    env: FAST_TIMEOUTS,
    expect: 'ok',
    verify: (result, m, before) => {
      assert.equal(delta(before, m).connections, 2);
      assert.deepEqual(result.ignoredFrames, { unknown: 1 });
    },
  },
);

/** Each validation rule broken in turn (field → the bad row). */
const BAD_ROWS: Array<[string, unknown]> = [
  ['not an object', 'META-USD 7'],
  ['null row', null],
  ['an array row', [GOOD_ROW]],
  ['symbol missing', { ...GOOD_ROW, symbol: undefined }],
  ['symbol empty', { ...GOOD_ROW, symbol: '  ' }],
  ['symbol a number', { ...GOOD_ROW, symbol: 42 }],
  ['leverage missing', { ...GOOD_ROW, leverage: undefined }],
  ['leverage zero', { ...GOOD_ROW, leverage: '0' }],
  ['leverage negative', { ...GOOD_ROW, leverage: '-5' }],
  ['leverage "NaN"', { ...GOOD_ROW, leverage: 'NaN' }],
  ['leverage "Infinity"', { ...GOOD_ROW, leverage: 'Infinity' }],
  ['leverage an object', { ...GOOD_ROW, leverage: { value: 7 } }],
  ['initial_margin missing', { ...GOOD_ROW, initial_margin: undefined }],
  ['initial_margin "NaN"', { ...GOOD_ROW, initial_margin: 'NaN' }],
  ['initial_margin "Infinity"', { ...GOOD_ROW, initial_margin: 'Infinity' }],
  ['initial_margin a numeric string', { ...GOOD_ROW, initial_margin: '0.5' }],
  ['initial_margin zero', { ...GOOD_ROW, initial_margin: 0 }],
  ['initial_margin negative', { ...GOOD_ROW, initial_margin: -0.5 }],
  ['initial_margin above 1', { ...GOOD_ROW, initial_margin: 1.5 }],
  ['maintenance_margin missing', { ...GOOD_ROW, maintenance_margin: undefined }],
  ['maintenance_margin "NaN"', { ...GOOD_ROW, maintenance_margin: 'NaN' }],
  ['maintenance_margin null', { ...GOOD_ROW, maintenance_margin: null }],
  ['maintenance_margin zero', { ...GOOD_ROW, maintenance_margin: 0 }],
  ['maintenance above initial', { ...GOOD_ROW, maintenance_margin: 0.6 }],
  ['max_notional missing', { ...GOOD_ROW, max_notional: undefined }],
  ['max_notional "Infinity"', { ...GOOD_ROW, max_notional: 'Infinity' }],
  ['max_notional a numeric string', { ...GOOD_ROW, max_notional: '1000' }],
  ['max_notional zero', { ...GOOD_ROW, max_notional: 0 }],
  ['max_notional negative', { ...GOOD_ROW, max_notional: -1000 }],
  ['id a number', { ...GOOD_ROW, id: 12345 }],
];

const MALFORMED_ROWS: FaultCase[] = BAD_ROWS.map(([rule, row]): FaultCase => ({
  name: `a row with ${rule}: ROW_INVALID`,
  faults: [{ kind: 'malformed_row', page: 2, index: 3, row: row === null || typeof row !== 'object' || Array.isArray(row) ? row : JSON.parse(JSON.stringify(row)) }],
  expect: 'ROW_INVALID',
  verify: (result: SweepResult) => {
    if (!result.ok) assert.match(result.error.message, /tier row at offset \d+/);
  },
}));

const PAGINATION: FaultCase[] = [
  {
    name: 'a server cap (7) below the requested limit (1000): the pager advances by rows received',
    expect: 'ok',
    verify: (result, m) => {
      const pages = m.h.sim.stats.lastRequests.filter((request) => request.connection === m.h.sim.stats.connections);
      assert.ok(pages.every((request) => request.limit === 1000 && request.servedLimit === 7));
      assert.ok(result.ok && result.pages === pages.length && pages.length > 5);
    },
  },
  {
    name: 'a row inserted before the offset while paging: detected (duplicate/overlap), swept again, stored consistently',
    faults: [{ kind: 'shift_insert', afterPage: 2 }],
    expect: 'ok',
    verify: (_result, m) => assert.equal(m.h.sim.firedFaults().at(-1)?.kind, 'shift_insert'),
  },
  {
    name: 'a row deleted before the offset while paging: detected by the overlap, swept again',
    faults: [{ kind: 'shift_delete', afterPage: 3 }],
    expect: 'ok',
  },
  {
    name: 'a list that shifts on every pass: PAGINATION_INCONSISTENT',
    // Page numbers count per connection, and each restart is on a fresh connection (issue 10): pass 1
    // shifts after its page 2, pass 2 after its page 5, pass 3 after its page 8, each detected a page later.
    faults: [2, 5, 8].map((afterPage): Fault => ({ kind: 'shift_insert', afterPage })),
    env: { TIERWATCH_SHIFT_RETRIES: '2' },
    expect: 'PAGINATION_INCONSISTENT',
    verify: (_result, m, before) => assert.equal(delta(before, m).connections, 3, 'one connection per pass'),
  },
  {
    name: 'an exchange that always returns a full page: PAGE_LIMIT_REACHED',
    faults: [{ kind: 'infinite_list' }],
    env: { TIERWATCH_MAX_PAGES: '30' },
    expect: 'PAGE_LIMIT_REACHED',
    verify: messageMatches(/TIERWATCH_MAX_PAGES/),
  },
  {
    name: 'an empty answer: EMPTY_SWEEP (the current tiers stay open)',
    faults: [{ kind: 'empty_list' }],
    expect: 'EMPTY_SWEEP',
  },
];

for (const [label, cases] of [
  ['network and auth', NETWORK_AND_AUTH],
  ['drops and silence', DROPS_AND_SILENCE],
  ['exchange errors', EXCHANGE_ERRORS],
  ['malformed frames', BAD_FRAMES],
  ['malformed rows', MALFORMED_ROWS],
  ['pagination', PAGINATION],
] as const) {
  test(`fault matrix: ${label}`, async (t) => {
    for (const c of cases) await t.test(c.name, caseBody(plain, c));
  });
}

test('fault matrix: the socket dropped at every page N of a multi-page sweep is retried and succeeds', async (t) => {
  const probe = await runCase(plain, { name: 'probe', expect: 'ok' });
  const pages = probe.ok ? probe.pages : 0;
  assert.ok(pages >= 8, `a multi-page sweep (${pages} pages)`);
  for (let page = 1; page <= pages; page++) {
    await t.test(
      `dropped at page ${page} of ${pages}`,
      caseBody(plain, {
        name: `drop at page ${page}`,
        faults: [{ kind: 'drop_at_page', page }],
        expect: 'ok',
        verify: (_result, m, before) => assert.equal(delta(before, m).connections, 2, 'one fresh connection'),
      }),
    );
  }
  await t.test(
    'dropped at a page on every connection: QFEX_CLOSED, bounded',
    caseBody(plain, {
      name: 'persistent drop at page 4',
      faults: [{ kind: 'drop_at_page', page: 4, persistent: true }],
      env: { TIERWATCH_SWEEP_RETRIES: '1' },
      expect: 'QFEX_CLOSED',
      verify: (_result, m, before) => assert.equal(delta(before, m).connections, 2),
    }),
  );
});

test('fault matrix: TLS', async (t) => {
  await t.test(
    'a certificate the client does not trust: QFEX_TLS, not retried',
    caseBody(secure, {
      name: 'untrusted certificate',
      env: { QFEX_CA_FILE: '' },
      expect: 'QFEX_TLS',
      verify: (result, m) => {
        messageMatches(/QFEX_CA_FILE/)(result);
        assert.deepEqual(m.sleeps, []);
      },
    }),
  );
  await t.test('a TLS server that stalls the handshake: QFEX_TIMEOUT, retried a bounded number of times', async () => {
    const accepted = stallSockets.length;
    await runCase(secure, {
      name: 'stalled handshake',
      arrange: (m) => void (m.redirectUrl = `wss://localhost:${stallPort}`),
      env: { TIERWATCH_CONNECT_TIMEOUT: '150ms', TIERWATCH_SWEEP_RETRIES: '1' },
      expect: 'QFEX_TIMEOUT',
      verify: (result) => {
        messageMatches(/handshake/)(result);
        assert.equal(stallSockets.length - accepted, 2);
      },
    });
  });
  await t.test('the private CA trusted through QFEX_CA_FILE: the sweep succeeds', caseBody(secure, { name: 'trusted through QFEX_CA_FILE', expect: 'ok' }));
});

test('fault matrix: a mass removal above the threshold is MASS_REMOVAL; TIERWATCH_MAX_REMOVAL_RATIO=1 lets it through', async () => {
  const m = plain;
  const keep = m.h.sim.tiers().slice(0, 10);
  await runCase(m, {
    name: 'mass removal',
    arrange: () => void m.h.sim.setTiers('primary', [...keep, makeTier('KEPT-USD', 3, 90_000)]),
    expect: 'MASS_REMOVAL',
    verify: messageMatches(/would remove \d+ of its \d+ current tiers/),
    recoverEnv: { TIERWATCH_MAX_REMOVAL_RATIO: '1' },
  });
  assert.equal(m.h.sim.tiers().length, 11);
});

test('fault matrix: no secret or signature reached the logs, the ledger or the database files', () => {
  const m = plain;
  assert.ok(m.signatures.size > 50, `signatures were captured (${m.signatures.size})`);
  const secrets: Record<string, string> = { QFEX_SECRET_KEY: SECRET_KEY };
  let i = 0;
  for (const signature of [...plain.signatures, ...secure.signatures]) secrets[`signature ${++i}`] = signature;
  const leaks = findLeaks(
    {
      'plain logs': plain.h.logs.text(),
      'tls logs': secure.h.logs.text(),
      ...databaseFiles(plain.h.dbPath),
      ...databaseFiles(secure.h.dbPath),
    },
    secrets,
  );
  assert.deepEqual(leaks, []);
});
