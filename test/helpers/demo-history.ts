/**
 * The demo history the documentation's examples run against (test/docs-examples.test.ts): what
 * `tierwatch demo` records, made reproducible. The same simulator and change script as the demo,
 * with a fixed seed, and sweeps stamped by a fake clock (one every 5 s from DEMO_HISTORY_START), so
 * the output pasted in README.md and docs/ is exactly what the commands print against it.
 *
 * The simulator stays up until `close()`: examples that collect (`tierwatch collect`, `check`, `run`)
 * reach the same endpoint the history belongs to.
 */
import { silentLogger } from '../../src/log.ts';
import { loadConfig } from '../../src/config.ts';
import { sweepAccount } from '../../src/collect/sweep.ts';
import {
  DEMO_PUBLIC_KEY,
  DEMO_SECRET_KEY,
  startChangeScript,
  startSimulator,
  type Simulator,
} from '../../src/sim/index.ts';
import { openDatabase } from '../../src/store/db.ts';
import { HistoryStore } from '../../src/store/history-store.ts';

/** When the first sweep of the demo history was observed. */
export const DEMO_HISTORY_START = Date.parse('2026-11-30T09:00:00.000Z');
/** Sweeps recorded: the baseline, then one after each change step. */
export const DEMO_HISTORY_SWEEPS = 10;
const SEED = 4;

export interface DemoHistory {
  sim: Simulator;
  /** The simulator's credentials and URL, as environment variables. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Records the demo history into `dbPath` (a new file) and leaves its simulator running. */
export async function buildDemoHistory(dbPath: string): Promise<DemoHistory> {
  const sim = await startSimulator({ host: '127.0.0.1', port: 0 });
  const env = { QFEX_WS_URL: sim.url, QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY, QFEX_SECRET_KEY: DEMO_SECRET_KEY };
  // The steps are taken by hand between sweeps, never by the script's timer.
  const script = startChangeScript(sim, { everyMs: 2 ** 30, seed: SEED });
  script.stop();
  const config = loadConfig({ ...env, TIERWATCH_DB: dbPath, LOG_LEVEL: 'silent' });
  const logger = silentLogger();
  const db = openDatabase(dbPath, { logger });
  try {
    // The mark `tierwatch demo` leaves, so a demo run over this history replaces it without --force.
    db.sqlite.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('created_by', 'tierwatch demo')").run();
    const store = new HistoryStore(db, { logger });
    let clock = 0;
    // Each reading of the clock moves it on by 3 ms, as a sweep takes a few milliseconds.
    const now = () => new Date((clock += 3));
    for (let sweep = 0; sweep < DEMO_HISTORY_SWEEPS; sweep += 1) {
      if (sweep > 0) script.step();
      clock = DEMO_HISTORY_START + sweep * 5000;
      const result = await sweepAccount(config, 'primary', { store, logger, now });
      if (!result.ok) throw result.error;
    }
  } finally {
    db.close();
  }
  return {
    sim,
    env,
    close: () => sim.close(),
  };
}
