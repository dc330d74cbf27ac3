/**
 * The rows of the fault matrix (test/fault-matrix.test.ts): each fault the sweep must survive or
 * fail on with a given code, grouped as the matrix reports them. Each case is data plus the checks
 * particular to it; what every case must satisfy is runCase's (helpers/fault-matrix.ts).
 */
import assert from 'node:assert/strict';
import type { SweepResult } from '../../src/collect/sweep.ts';
import type { Fault } from '../../src/sim/index.ts';
import {
  authFailure,
  deadPorts,
  delta,
  exchangeClock,
  FAST_TIMEOUTS,
  messageMatches,
  PUBLIC_KEY,
  SECRET_KEY,
  type FaultCase,
} from './fault-matrix.ts';

/** A row that passes every validation rule; each malformed-row case breaks one. */
const GOOD_ROW = {
  id: 'f00d',
  symbol: 'ZZTOP-USD',
  leverage: '7',
  initial_margin: 0.5,
  maintenance_margin: 0.25,
  max_notional: 1000,
};

const NETWORK_AND_AUTH: FaultCase[] = [
  {
    name: 'connection refused: retried on a fresh connection, bounded, then QFEX_CONNECT',
    arrange: (m) => void (m.redirectUrl = `ws://localhost:${deadPorts.refused}`),
    env: { TIERWATCH_SWEEP_RETRIES: '2' },
    expect: 'QFEX_CONNECT',
    verify: (result, m) => {
      messageMatches(/ECONNREFUSED/)(result);
      assert.equal(m.sleeps.length, 2, 'two fresh-connection retries, then the failure');
      assert.ok(
        m.sleeps.every((ms) => ms <= 20),
        'backoff capped by TIERWATCH_BACKOFF_MAX',
      );
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
      m.deps.lookup = (hostname, options, callback) => {
        original(hostname, options, callback);
        m.lookup.failing = false;
        m.deps.lookup = original;
      };
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
    arrange: () => void (exchangeClock.offsetMs = 10 * 60_000),
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
    arrange: (m) =>
      m.h.sim.inject({ kind: 'drop_before_page', page: 2 + Math.ceil((m.h.sim.tiers().length - 7) / 6) + 1 }),
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
  faults: [
    {
      kind: 'malformed_row',
      page: 2,
      index: 3,
      row: row === null || typeof row !== 'object' || Array.isArray(row) ? row : JSON.parse(JSON.stringify(row)),
    },
  ],
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

/** Every table of cases, under the name the matrix reports it by. */
export const FAULT_TABLES: ReadonlyArray<readonly [string, readonly FaultCase[]]> = [
  ['network and auth', NETWORK_AND_AUTH],
  ['drops and silence', DROPS_AND_SILENCE],
  ['exchange errors', EXCHANGE_ERRORS],
  ['malformed frames', BAD_FRAMES],
  ['malformed rows', MALFORMED_ROWS],
  ['pagination', PAGINATION],
];
