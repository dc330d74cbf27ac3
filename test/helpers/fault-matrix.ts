/**
 * The machinery of the fault matrix (test/fault-matrix.test.ts): a simulator and a database per
 * matrix, one case run as a sweep with its faults, and the checks every case shares (a failed sweep
 * leaves the history as it was; the next sweep records exactly the true changes).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sweepAccount, type SweepDeps, type SweepResult } from '../../src/collect/sweep.ts';
import type { ErrorCode } from '../../src/errors.ts';
import { signHmac } from '../../src/qfex/auth.ts';
import { openSession, type QfexClientOptions } from '../../src/qfex/client.ts';
import type { Fault, SimulatorOptions } from '../../src/sim/index.ts';
import { startHarness, type Harness } from './harness.ts';
import { historyDump, ledgerRow, netChanges, recordedChanges, switchableLookup } from './faults.ts';

// Recognisable credentials: the last test of the matrix searches every output for them.
export const PUBLIC_KEY = 'qfex_pub_fault_matrix';
export const SECRET_KEY = `qfex_secret_MATRIXCANARY_${randomBytes(6).toString('hex')}`;

/** How far ahead of ours the plain simulator's clock runs (a case sets it; every sweep resets it). */
export const exchangeClock = { offsetMs: 0 };

/** Ports on which nothing answers the way a server should (set once the matrix starts). */
export const deadPorts = { refused: 0, stall: 0 };

// Short enough to keep the matrix fast, long enough that a loaded machine never times out a page that does come.
export const FAST_TIMEOUTS = { TIERWATCH_AUTH_TIMEOUT: '400ms', TIERWATCH_REQUEST_TIMEOUT: '400ms' };

export interface Matrix {
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

export interface Before {
  connections: number;
  errorsSent: Record<string, number>;
  pageRequests: number;
}

export interface FaultCase {
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

export async function matrix(simOptions: SimulatorOptions, url: (h: Harness) => string): Promise<Matrix> {
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
export function trueChange(m: Matrix): void {
  const n = ++m.trueChanges;
  const tiers = m.h.sim.tiers();
  const target = tiers[(n * 7) % tiers.length]!;
  m.h.sim.editTier('primary', target.symbol, target.leverage, { max_notional: target.max_notional + 1000 });
  if (n % 3 === 1) m.h.sim.listSymbol('primary', `F${n}-USD`, { levels: [1, 2] });
  if (n % 3 === 2) {
    const victim = tiers[(n * 13) % tiers.length]!;
    if (victim.symbol !== target.symbol || victim.leverage !== target.leverage) {
      m.h.sim.removeTier('primary', victim.symbol, victim.leverage);
    }
  }
}

export function assertRecordsTrueChanges(m: Matrix, result: SweepResult, label: string): void {
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
export function caseBody(m: Matrix, c: FaultCase): () => Promise<void> {
  return async () => {
    await runCase(m, c);
  };
}

export async function runCase(m: Matrix, c: FaultCase): Promise<SweepResult> {
  const { h } = m;
  trueChange(m);
  const history = historyDump(h.db.sqlite);
  const before: Before = {
    connections: h.sim.stats.connections,
    errorsSent: { ...h.sim.stats.errorsSent },
    pageRequests: h.sim.stats.pageRequests,
  };
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
    exchangeClock.offsetMs = 0;
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
    assertRecordsTrueChanges(
      m,
      await sweepAccount(h.config({ ...m.baseEnv, ...c.recoverEnv }), 'primary', m.deps),
      `${c.name}, next sweep`,
    );
  }
  return result;
}

export function delta(
  before: Before,
  m: Matrix,
): { connections: number; pageRequests: number; errors: (code: string) => number } {
  return {
    connections: m.h.sim.stats.connections - before.connections,
    pageRequests: m.h.sim.stats.pageRequests - before.pageRequests,
    errors: (code) => (m.h.sim.stats.errorsSent[code] ?? 0) - (before.errorsSent[code] ?? 0),
  };
}

export function authFailure(reason: string) {
  return (_result: SweepResult, m: Matrix, before: Before) => {
    assert.equal(m.h.sim.stats.lastAuthFailure, reason);
    assert.equal(delta(before, m).connections, 1, 'an auth rejection is not retried');
  };
}

export function messageMatches(pattern: RegExp) {
  return (result: SweepResult) => {
    if (!result.ok) assert.match(result.error.message, pattern);
  };
}
