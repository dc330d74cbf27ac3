/**
 * The daemon: a sweep of every account at start, then one on every firing of the cron schedule
 * (UTC), never two at once. Shutdown (the signal passed in) stops the schedule, aborts the sweep in
 * flight and waits for it to record its run, within a bound.
 *
 * With a gate (several collectors on one Postgres history, collect/leader-gate.ts) only the leader
 * sweeps: a standby skips every firing, a daemon that becomes the leader sweeps at once, and one that
 * stops leading has its sweep in flight aborted at once — it stays up and stands by.
 */
import { createTask, type ScheduledTask } from 'node-cron';
import type { Config } from '../config.ts';
import { isTierwatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { sweepAll, type SweepDeps, type SweepResult } from './sweep.ts';

export interface DaemonHooks {
  /** Called after every sweep of every account, in order: the demo prints changes from here. */
  onSweep?: (result: SweepResult) => void;
  /** Called once per firing, after onSweep, with every account's result (the leader's step-down counts these). */
  afterSweeps?: (results: SweepResult[]) => void;
  /**
   * Called before every sweep; what it throws stops the daemon, and runDaemon rejects with it. The
   * collectors pass the database's `assertSameFile`: a sweep into a deleted or replaced file is lost.
   */
  beforeSweep?: () => void;
  /**
   * Several collectors on one Postgres history: only the leader sweeps. Without a gate the daemon
   * always sweeps (SQLite: the writer lock already makes it the only writer).
   */
  gate?: SweepGate;
}

/** Whether this daemon may sweep now, and for how long (see collect/leader-gate.ts). */
export interface SweepGate {
  /**
   * While this daemon leads: a signal aborted the moment it stops leading (the sweep in flight is
   * then abandoned at once). null while it stands by: the firing is skipped.
   */
  leadership(): AbortSignal | null;
  /** Registers what to call when this daemon becomes the leader: it sweeps at once. */
  onLead(listener: () => void): void;
  /** A write was refused with DB_LEADERSHIP_LOST: another collector leads now. */
  lost(reason: string): void;
}

/** Routes node-cron's own messages through pino instead of the console. */
function cronLogger(logger: Logger) {
  const log = logger.child({ component: 'cron' });
  return {
    info: (message: string) => log.debug(message),
    warn: (message: string) => log.warn(message),
    error: (message: string | Error) => log.error({ err: message }, 'scheduler error'),
    debug: (message: string | Error) => log.debug({ msg: String(message) }),
  };
}

/**
 * Runs until `stop` is aborted. Resolves once the schedule is stopped and the sweep in flight (if
 * any) has finished or been abandoned after `config.shutdownTimeoutMs`; resolves `true` when it
 * shut down cleanly, `false` when the sweep in flight did not finish in time. Rejects with what
 * `hooks.beforeSweep` threw (e.g. DB_REPLACED), after stopping the same way.
 */
export async function runDaemon(
  config: Config,
  deps: SweepDeps,
  stop: AbortSignal,
  hooks: DaemonHooks = {},
): Promise<boolean> {
  const { logger, store } = deps;
  const { gate } = hooks;
  // Behind a gate the store marks them itself, under each new leadership (store/pg/sweep-store.ts):
  // a standby must not touch the leader's running runs.
  if (gate === undefined) {
    const abandoned = await store.markAbandonedRuns((deps.now ?? (() => new Date()))());
    if (abandoned > 0) {
      logger.warn({ abandoned }, `marked ${abandoned} run(s) left running by an earlier crash as abandoned`);
    }
  }

  // One controller per sweep, aborted by shutdown: the sweep records an aborted run and returns.
  const sweepAbort = new AbortController();
  const onStop = () => sweepAbort.abort();
  stop.addEventListener('abort', onStop, { once: true });

  // What stopped the daemon from inside (beforeSweep threw), and the wake-up for the wait below.
  let fatal: { error: unknown } | null = null;
  let wake: () => void = () => undefined;
  let inFlight: Promise<void> | null = null;
  const sweepNow = (reason: string): void => {
    if (stop.aborted || fatal !== null) return;
    try {
      hooks.beforeSweep?.();
    } catch (error) {
      fatal = { error };
      logger.fatal({ err: error }, 'stopping the daemon: its database cannot take another sweep');
      wake();
      return;
    }
    const leading = gate === undefined ? sweepAbort.signal : gate.leadership();
    if (leading === null) {
      logger.debug({ reason }, "standing by: this firing is the leader's");
      return;
    }
    if (inFlight !== null) {
      logger.warn({ reason }, 'the previous sweep is still running; skipping this firing');
      return;
    }
    const signal = gate === undefined ? sweepAbort.signal : AbortSignal.any([sweepAbort.signal, leading]);
    inFlight = sweepAll(config, deps, signal)
      .then((results) => {
        for (const result of results) hooks.onSweep?.(result);
        hooks.afterSweeps?.(results);
      })
      .catch((error: unknown) => {
        if (gate !== undefined && isTierwatchError(error, 'DB_LEADERSHIP_LOST')) {
          // Not a failure of this daemon: it stands by now; the new leader marks the run abandoned.
          logger.warn({ code: error.code }, `stopped sweeping: ${error.message}`);
          gate.lost('a write was refused: another collector leads');
          return;
        }
        logger.error({ err: error }, 'sweep could not be recorded');
      })
      .finally(() => {
        inFlight = null;
      });
  };

  const task: ScheduledTask = createTask(config.schedule, () => sweepNow('schedule'), {
    timezone: 'UTC',
    name: 'tierwatch-sweep',
    noOverlap: true,
    logger: cronLogger(logger),
  });

  if (stop.aborted) return true;
  gate?.onLead(() => sweepNow('elected'));
  sweepNow('start');
  await task.start();
  logger.info({ schedule: config.schedule, next: task.getNextRun()?.toISOString() ?? null }, 'daemon started');

  await new Promise<void>((resolve) => {
    wake = resolve;
    if (stop.aborted || fatal !== null) resolve();
    else stop.addEventListener('abort', () => resolve(), { once: true });
  });
  logger.info('shutting down: schedule stopped, finishing the sweep in flight');
  await task.stop();
  await task.destroy();
  stop.removeEventListener('abort', onStop);

  // TypeScript narrows both lets to their initial null: only the closures above assign them.
  const failure = fatal as { error: unknown } | null;
  const pending = inFlight as Promise<void> | null;
  if (failure !== null) {
    sweepAbort.abort();
    await pending;
    throw failure.error;
  }
  if (pending === null) return true;
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    pending.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), config.shutdownTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!finished) logger.error({ timeout_ms: config.shutdownTimeoutMs }, 'the sweep in flight did not stop in time');
  return finished;
}
