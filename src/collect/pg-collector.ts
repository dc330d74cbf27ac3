/**
 * `tierwatch run` and `tierwatch collect` on a Postgres history (TIERWATCH_DB=postgres://…): the
 * schema migrated at start (under the migration lock: several daemons may start together), then the
 * leadership lease decides who collects — see collect/leader-gate.ts and store/pg/lease.ts.
 *
 * The daemon's HTTP port serves /healthz (the shared history's freshness, and this daemon's role:
 * collect/pg-health.ts), /metrics (this daemon's own sweeps) and the read-only web view (every
 * daemon, leader or standby: it only reads, a session per request). Webhook alerts are written and
 * delivered by the leader only (alerts/pg-alerting.ts).
 */
import type pg from 'pg';
import type { Config, PostgresUrl } from '../config.ts';
import { PgAlerting } from '../alerts/pg-alerting.ts';
import { PgOutbox } from '../alerts/pg-outbox.ts';
import { TierwatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { createPgPool } from '../store/pg/connection.ts';
import { LeaderLease } from '../store/pg/lease.ts';
import { keepLeadership } from '../store/pg/leadership.ts';
import { migratePostgres } from '../store/pg/migrate.ts';
import { PgSweepStore } from '../store/pg/sweep-store.ts';
import { runDaemon } from './daemon.ts';
import { healthMaxAgeMs } from './health.ts';
import type { SweepMetrics } from './metrics.ts';
import type { WebView } from '../web/server.ts';
import { LeaderGate } from './leader-gate.ts';
import { sweepAll, type SweepResult } from './sweep.ts';

interface PgCollector {
  pool: pg.Pool;
  lease: LeaderLease;
  store: PgSweepStore;
  close: () => Promise<void>;
}

async function openPgCollector(
  config: Config,
  url: PostgresUrl,
  logger: Logger,
  command: string,
): Promise<PgCollector> {
  const migrated = await migratePostgres(url.reveal());
  if (migrated.applied > 0) logger.info({ applied: migrated.applied, db: url.display }, 'database migrated');
  const pool = createPgPool(url.reveal(), { applicationName: `tierwatch ${command} ${process.pid}` });
  const lease = new LeaderLease(pool, { settings: config.leadership.lease });
  return { pool, lease, store: new PgSweepStore(lease, logger), close: () => pool.end().catch(() => {}) };
}

/** Logs a database error of the leadership loop: once per streak at warn, the rest at debug. */
function loopErrorLogger(logger: Logger): { onError: (error: unknown) => void; onSuccess: () => void } {
  let failing = false;
  return {
    onError(error) {
      const message = `the leadership lease could not be read or renewed: ${(error as Error).message}`;
      if (failing) logger.debug({ err: error }, message);
      else logger.warn({ code: (error as { code?: string }).code }, `${message}; retrying`);
      failing = true;
    },
    onSuccess() {
      failing = false;
    },
  };
}

/**
 * The daemon on Postgres: leads or stands by until `stop` aborts, then finishes (or aborts) the sweep
 * in flight and only then releases the lease, so the aborted run is still recorded by its leader and a
 * standby takes over at its next poll. Resolves as runDaemon does (true: clean).
 */
export async function runPgDaemon(
  config: Config,
  url: PostgresUrl,
  logger: Logger,
  stop: AbortSignal,
  options: { onSweep?: (result: SweepResult) => void; view?: WebView } = {},
): Promise<boolean> {
  const { onSweep, view } = options;
  const { pool, lease, store, close } = await openPgCollector(config, url, logger, 'run');
  const gate = new LeaderGate({ lease, logger, stepDownAfter: config.leadership.stepDownAfter });
  let http: PgHttp | null = null;
  const loopStop = new AbortController();
  const errors = loopErrorLogger(logger);
  const { ttlMs, pollEveryMs, renewEveryMs } = lease.settings;
  logger.info(
    { holder: lease.holder, lease_ttl_ms: ttlMs, lease_renew_ms: renewEveryMs, lease_poll_ms: pollEveryMs },
    `taking part in leadership as ${lease.holder}: a standby takes over within ${ttlMs + pollEveryMs} ms of the leader's loss`,
  );
  const loop = keepLeadership(lease, {
    signal: loopStop.signal,
    onElected: (epoch) => {
      errors.onSuccess();
      gate.elected(epoch);
    },
    onLost: (epoch, reason) => gate.lostLease(epoch, reason),
    onStandby: () => {
      errors.onSuccess();
      gate.standingBy();
    },
    onError: errors.onError,
    mayAcquire: () => gate.mayAcquire(),
  });
  let alerting: PgAlerting | null = null;
  try {
    if (config.httpPort !== null) http = await startPgHttp(config, pool, gate, logger, view);
    alerting = new PgAlerting(config, {
      outbox: new PgOutbox(lease, pool),
      lease,
      logger,
      leadership: () => gate.leadership(),
      setSweepHook: (hook) => store.setSweepHook(hook),
      ...(http === null ? {} : { counters: http.metrics }),
    });
    alerting.start({ checkEveryMs: Math.min(60_000, Math.max(1000, Math.round(healthMaxAgeMs(config) / 4))) });
    // A new leader first delivers what an earlier one left pending.
    const leaderAlerts = alerting;
    gate.onLead(() => leaderAlerts.afterRun());
    return await runDaemon(config, { store, logger }, stop, {
      gate,
      onSweep: (result) => {
        http?.record(result);
        leaderAlerts.afterRun();
        onSweep?.(result);
      },
      afterSweeps: (results) => gate.afterSweeps(results),
    });
  } finally {
    // Before the lease goes: the last delivery marks are still fenced writes of the leader.
    await alerting?.stop();
    await http?.close();
    loopStop.abort();
    await loop;
    gate.resigned();
    await close();
  }
}

interface PgHttp {
  metrics: SweepMetrics;
  record(result: SweepResult): void;
  close(): Promise<void>;
}

/** /healthz and /metrics on TIERWATCH_HTTP_PORT (prom-client loaded only then, as on SQLite). */
async function startPgHttp(
  config: Config,
  pool: pg.Pool,
  gate: LeaderGate,
  logger: Logger,
  view: WebView | undefined,
): Promise<PgHttp> {
  const { SweepMetrics } = await import('./metrics.ts');
  const { healthMaxAgeMs } = await import('./health.ts');
  const { startHttpEndpoint } = await import('./http.ts');
  const { PgHealth } = await import('./pg-health.ts');
  const { packageVersion } = await import('../paths.ts');
  const metrics = new SweepMetrics({ accountIds: config.accountIds, version: packageVersion() });
  const health = new PgHealth(pool, config.accountIds, healthMaxAgeMs(config), () => gate.describeRole());
  await health.start();
  for (const account of (await health.refresh()) ?? []) {
    metrics.seedLastSuccess(account.accountId, account.lastSuccessAt);
  }
  const endpoint = await startHttpEndpoint({
    ...(view === undefined ? {} : { view }),
    host: config.httpHost,
    port: config.httpPort ?? 0,
    metrics,
    health: () => health.verdict(new Date()),
    logger,
  });
  return {
    metrics,
    record(result) {
      metrics.record(result);
      if (result.ok) health.recordSuccess(result.accountId, result.observedAt.toISOString());
    },
    async close() {
      health.stop();
      await endpoint.close();
    },
  };
}

/**
 * One sweep of every account on Postgres (`tierwatch collect`): takes the lease first, and throws
 * DB_LEADER_ELSEWHERE, having swept nothing, when another collector holds it. While sweeping it
 * keeps renewing the lease; at the end it releases it, so a daemon's standby takes over at once.
 */
export async function collectOnPostgres(
  config: Config,
  url: PostgresUrl,
  logger: Logger,
  signal: AbortSignal,
): Promise<SweepResult[]> {
  const { pool, lease, store, close } = await openPgCollector(config, url, logger, 'collect');
  try {
    const epoch = await lease.tryAcquire();
    if (epoch === null) {
      const current = await lease.current().catch(() => null);
      throw new TierwatchError(
        'DB_LEADER_ELSEWHERE',
        current === null
          ? `another collector holds the leadership lease of ${url.display}; nothing was swept`
          : `${current.holder} leads ${url.display} (epoch ${current.epoch}, its lease runs until ${current.expires_at} unless renewed); nothing was swept: the leader collects`,
        { details: current === null ? {} : { holder: current.holder, epoch: current.epoch } },
      );
    }
    logger.info({ epoch, holder: lease.holder }, `leading (epoch ${epoch}) for one sweep`);
    const loopStop = new AbortController();
    const loop = keepLeadership(lease, { signal: loopStop.signal });
    const leading = new AbortController();
    const alerting = new PgAlerting(config, {
      outbox: new PgOutbox(lease, pool),
      lease,
      logger,
      leadership: () => (lease.epoch === null ? null : leading.signal),
      setSweepHook: (hook) => store.setSweepHook(hook),
    });
    alerting.start();
    try {
      const results = await sweepAll(config, { store, logger }, signal);
      // One delivery pass, as on SQLite: leftovers of earlier runs first, then this run's, in order.
      await alerting.flush();
      return results;
    } finally {
      await alerting.stop();
      loopStop.abort();
      await loop;
    }
  } finally {
    await close();
  }
}
