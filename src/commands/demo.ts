/**
 * `tierwatch demo`: the simulator on loopback with tiers that change every few seconds, and the
 * daemon collecting them on a seconds-level schedule into a fresh ./data/demo.db, printing each
 * change as it is stored. Ends by itself after --duration, or on Ctrl-C.
 *
 * The demo starts from an empty history, so it replaces what is at --db, but only its own earlier
 * history (marked in `meta`), an empty database or nothing: a real history, another program's
 * database or an unreadable file is refused (exit 2) with what is there, unless --force.
 */
import { rmSync } from 'node:fs';
import { loadConfig } from '../config.ts';
import { TierwatchError, isTierwatchError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { describeChange } from '../report/describe-change.ts';
import { durationOption } from './options.ts';
import type { CommandSpec } from './context.ts';

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'watch tierwatch collect changing tiers from the built-in simulator into ./data/demo.db',
  configure(command) {
    command
      .option('--duration <duration>', 'how long to run', '2m')
      .option(
        '--db <path>',
        'where to write the demo history (replaces an earlier demo history, nothing else unless --force)',
        './data/demo.db',
      )
      .option('--force', 'replace whatever is at --db, even a real history')
      .option('--change-every <duration>', 'how often the simulator changes tiers', '4s')
      .option('--schedule <cron>', 'the daemon schedule, seconds field first', '*/5 * * * * *');
  },
  async run(context) {
    // Loaded here, not at the top: no other command should pay for the simulator (or the daemon) at start-up.
    const { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, startChangeScript, startSimulator } = await import('../sim/index.ts');
    const { runDaemon } = await import('../collect/daemon.ts');
    const { openWriter } = await import('./writer.ts');
    const { summarizeHistory } = await import('../store/db.ts');
    const { options, io } = context;
    const durationMs = durationOption(options.duration, '--duration')!;
    const changeEveryMs = durationOption(options.changeEvery, '--change-every')!;
    const dbPath = String(options.db);

    const sim = await startSimulator({ host: '127.0.0.1', port: 0 });
    const script = startChangeScript(sim, { everyMs: changeEveryMs, seed: Date.now() % 100_000 });
    const config = loadConfig({
      QFEX_WS_URL: sim.url,
      QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY,
      QFEX_SECRET_KEY: DEMO_SECRET_KEY,
      TIERWATCH_DB: dbPath,
      TIERWATCH_SCHEDULE: String(options.schedule),
      LOG_LEVEL: io.env.LOG_LEVEL ?? 'warn',
    });
    // The change feed on stdout is the point of the demo; logs stay quiet unless LOG_LEVEL asks.
    const logger = createLogger({
      level: config.logLevel,
      ...(io.logDestination === undefined ? {} : { destination: io.logDestination }),
    });
    let writer;
    try {
      writer = openWriter(dbPath, 'tierwatch demo', logger, {
        // Under the writer lock: a daemon writing to this path refuses the demo instead of losing its file.
        beforeOpen: () => {
          if (options.force !== true) refuseToReplace(dbPath, summarizeHistory);
          for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true });
        },
      });
    } catch (error) {
      script.stop();
      await sim.close();
      throw error;
    }
    const stop = AbortSignal.any([io.signal, AbortSignal.timeout(durationMs)]);
    context.print(
      `QFEX simulator on ${sim.url}; collecting every 5 s into ${dbPath} for ${Math.round(durationMs / 1000)} s (Ctrl-C ends it sooner)`,
    );
    try {
      // The mark that lets the next demo replace this history without --force.
      writer.db.sqlite
        .prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('created_by', 'tierwatch demo')")
        .run();
      await runDaemon(config, { store: writer.store, logger }, stop, {
        beforeSweep: () => writer.db.assertSameFile(),
        onSweep(result) {
          if (!result.ok) {
            context.print(`run ${result.runId} failed: ${result.error.code}: ${result.error.message}`);
            return;
          }
          const stamp = result.observedAt.toISOString();
          if (result.changes.length === 0) {
            context.print(`${stamp}  run ${result.runId}: ${result.tiers} tiers, no change`);
          } else if (
            result.changes.length === result.tiers &&
            result.changes.every((change) => change.change === 'added')
          ) {
            context.print(`${stamp}  run ${result.runId}: first sweep, ${result.tiers} tiers recorded`);
          } else {
            for (const change of result.changes) {
              context.print(`${stamp}  run ${result.runId}: ${describeChange(change)}`);
            }
          }
        },
      });
    } finally {
      script.stop();
      writer.close();
      await sim.close();
    }
    context.print(`done. Try: sqlite3 ${dbPath} "select * from tier_changes where change = 'changed'"`);
    context.print(`or:  tierwatch changes --db ${dbPath}   (with node_modules/.bin first on PATH)`);
    return 0;
  },
};

/**
 * Throws USAGE (exit 2) unless what is at `dbPath` may be replaced by the demo: nothing, an empty
 * database, a history without runs, or the demo's own earlier history.
 */
function refuseToReplace(dbPath: string, summarize: typeof import('../store/db.ts').summarizeHistory): void {
  let summary;
  try {
    summary = summarize(dbPath);
  } catch (error) {
    if (!isTierwatchError(error) || !['DB_FOREIGN', 'DB_CORRUPT', 'DB_READ_FAILED'].includes(error.code)) throw error;
    throw new TierwatchError(
      'USAGE',
      `--db ${dbPath} is not a demo history, so the demo will not replace it: ${error.message} Use another --db, or add --force to replace it.`,
      { cause: error },
    );
  }
  if (summary === null || summary.runs === 0 || summary.createdBy === 'tierwatch demo') return;
  throw new TierwatchError(
    'USAGE',
    `--db ${dbPath} holds a tierwatch history the demo did not create (${summary.runs} run(s) of ${summary.endpoint ?? 'an unknown endpoint'}, last sweep ${summary.lastSweep ?? 'never'}); the demo starts from an empty history and will not replace it. Use another --db, or add --force to replace it.`,
    { details: { ...summary } },
  );
}
