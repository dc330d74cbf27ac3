/**
 * A history collected from the simulator for the web view's tests: two accounts, the default
 * universe plus a symbol that is an HTML injection, a baseline sweep, then sweeps after tightening,
 * loosening, a removal and an addition, and one failed run. Times are real (sweeps a few ms apart);
 * tests address points in it with run ids (`run:N`), which the CLI and the API both accept.
 */
import { sweepAccount } from '../../src/collect/sweep.ts';
import { compareTiers, defaultUniverse, DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, makeTier } from '../../src/sim/index.ts';
import { startWebServer, type WebServer } from '../../src/web/server.ts';
import type { TokenSource } from '../../src/web/auth.ts';
import { startHarness, type Harness } from './harness.ts';

export const HOSTILE = '<img src=x onerror=alert(1)>';
export const ACCOUNTS = ['primary', 'sub1'] as const;

export interface WebHistory {
  h: Harness;
  /** run_ids of the successful sweeps, in order, per round: [[primary, sub1], …]. */
  rounds: number[][];
  failedRun: number;
  close(): Promise<void>;
}

async function sweepRound(h: Harness): Promise<number[]> {
  const config = h.config();
  const ids: number[] = [];
  for (const account of ACCOUNTS) {
    const result = await sweepAccount(config, account, h);
    if (!result.ok) throw new Error(`sweep of ${account} failed: ${result.error.code} ${result.error.message}`);
    ids.push(result.runId);
  }
  return ids;
}

export async function webHistory(): Promise<WebHistory> {
  const hostile = [1, 2, 5].map((leverage) => makeTier(HOSTILE, leverage, 100_000));
  const universe = {
    primary: [...defaultUniverse(), ...hostile].sort(compareTiers),
    sub1: defaultUniverse().slice(0, 12),
  };
  const keys = [{ publicKey: DEMO_PUBLIC_KEY, secretKey: DEMO_SECRET_KEY, accounts: [...ACCOUNTS] }];
  const h = await startHarness({ universe, keys }, { QFEX_ACCOUNT_IDS: ACCOUNTS.join(','), LOG_LEVEL: 'silent' });
  try {
    return await collect(h);
  } catch (error) {
    await h.close();
    throw error;
  }
}

async function collect(h: Harness): Promise<WebHistory> {
  const rounds: number[][] = [];
  rounds.push(await sweepRound(h)); // the baseline
  h.sim.editTier('primary', 'META-USD', '20', { max_notional: 80_000 }); // tightening
  h.sim.editTier('primary', 'META-USD', '10', { max_notional: 165_000 }); // loosening
  h.sim.editTier('sub1', 'AAPL-USD', '5', { initial_margin: 0.25, maintenance_margin: 0.125 });
  rounds.push(await sweepRound(h));
  h.sim.editTier('primary', HOSTILE, '5', { max_notional: 50_000 });
  h.sim.removeTier('primary', 'META-USD', '1');
  rounds.push(await sweepRound(h));
  // A failed run in the ledger, as a timeout would leave it.
  const failedRun = h.store.startRun({
    accountId: 'primary',
    endpoint: h.config().endpoint,
    publicKey: 'test',
    startedAt: new Date(),
  });
  h.store.failRun(failedRun, {
    status: 'failed',
    code: 'QFEX_TIMEOUT',
    message: 'page 2 did not arrive in time',
    pages: 1,
    finishedAt: new Date(),
  });
  h.sim.editTier('primary', 'META-USD', '20', { max_notional: 120_000 });
  rounds.push(await sweepRound(h));
  return { h, rounds, failedRun, close: () => h.close() };
}

/** `tierwatch serve`'s server over the history, on a free loopback port. */
export async function serveHistory(dbPath: string, options: { token?: TokenSource | null } = {}): Promise<WebServer> {
  const { createLogger } = await import('../../src/log.ts');
  return startWebServer({
    dbPath,
    token: options.token ?? null,
    healthMaxAgeMs: 3_600_000,
    accounts: null,
    logger: createLogger({ level: 'silent' }),
    host: '127.0.0.1',
    port: 0,
  });
}
