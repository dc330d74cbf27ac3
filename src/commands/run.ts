/**
 * `tierwatch run`: the daemon. A sweep at start, then one per firing of TIERWATCH_SCHEDULE (UTC).
 * SIGTERM/SIGINT stop it cleanly: the sweep in flight is aborted and recorded as such, the database
 * is closed with its WAL checkpointed, and the exit code is 0.
 *
 * On Postgres (collect/pg-collector.ts) several daemons share one history and the holder of the
 * leadership lease collects; a stop releases the lease so a standby takes over at once.
 */
import type { HttpEndpoint } from '../collect/http.ts';
import { requireSqlitePath, type Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { WebView } from '../web/server.ts';
import type { CommandContext, CommandSpec } from './context.ts';

/**
 * The web view on the daemon's HTTP port, over its own read-only connection (SQLite) or a
 * read-only session per request (Postgres). Its token
 * (TIERWATCH_HTTP_TOKEN / _FILE) is checked now: a bad token file stops the start (exit 2).
 */
async function daemonWebView(
  context: CommandContext,
  config: Config,
  healthMaxAgeMs: number,
  logger: Logger,
): Promise<WebView> {
  const { createWebView, isLoopback } = await import('../web/server.ts');
  const { readToken, tokenSource } = await import('../web/auth.ts');
  const token = tokenSource(context.io.env);
  if (token !== null) readToken(token);
  else if (!isLoopback(config.httpHost)) {
    logger.warn(
      { host: config.httpHost, port: config.httpPort },
      'the web view is served without a token on a non-loopback address: set TIERWATCH_HTTP_TOKEN to require one',
    );
  }
  const { historyOpener } = await import('../query/source-opener.ts');
  return createWebView({
    history: await historyOpener(config.database),
    token,
    healthMaxAgeMs,
    accounts: config.accountIds,
    logger,
  });
}

export const runCommand: CommandSpec = {
  name: 'run',
  summary: 'run the daemon: sweep at start, then on the cron schedule, until SIGTERM or SIGINT',
  flags: ['db', 'exchange', 'schedule'],
  async run(context) {
    // Loaded here, not at the top: every other command (and --help) would pay for the daemon's
    // modules at start-up otherwise.
    const { describeConfig, checkSecretFiles } = await import('../config.ts');
    const { Alerting } = await import('../alerts/alerting.ts');
    const { runDaemon } = await import('../collect/daemon.ts');
    const { accountHealth, healthMaxAgeMs, judgeHealth } = await import('../collect/health.ts');
    const { packageVersion } = await import('../paths.ts');
    const { snakeCaseKeys } = await import('../log.ts');
    const { withWriter } = await import('./writer.ts');
    const config = context.config();
    checkSecretFiles(config);
    const logger = context.logger();
    logger.info(
      { version: packageVersion(), config: snakeCaseKeys(describeConfig(config)) },
      'tierwatch daemon starting',
    );
    if (config.database.kind === 'postgres') {
      const { runPgDaemon } = await import('../collect/pg-collector.ts');
      const view =
        config.httpPort === null ? undefined : await daemonWebView(context, config, healthMaxAgeMs(config), logger);
      try {
        const clean = await runPgDaemon(config, config.database.url, logger, context.io.signal, {
          ...(view === undefined ? {} : { view }),
        });
        logger.info(clean ? 'daemon stopped' : 'daemon stopped with a sweep still running');
        return clean ? 0 : 1;
      } finally {
        view?.close();
      }
    }
    const dbPath = requireSqlitePath(config.database);
    // prom-client (some 90 modules, ~20 MB resident) only when /metrics is served: without the HTTP
    // endpoint nothing can read the metrics, so nothing is counted.
    const metrics =
      config.httpPort === null
        ? null
        : new (await import('../collect/metrics.ts')).SweepMetrics({
            accountIds: config.accountIds,
            version: packageVersion(),
          });
    return withWriter(dbPath, 'tierwatch run', logger, async ({ db, store }) => {
      const deps = { store, logger };
      store.bindEndpoint(config.endpoint);
      let http: HttpEndpoint | null = null;
      let view: WebView | null = null;
      if (metrics !== null && config.httpPort !== null) {
        for (const account of accountHealth(db, config.accountIds)) {
          metrics.seedLastSuccess(account.accountId, account.lastSuccessAt);
        }
        const { startHttpEndpoint } = await import('../collect/http.ts');
        const maxAgeMs = healthMaxAgeMs(config);
        view = await daemonWebView(context, config, maxAgeMs, logger);
        http = await startHttpEndpoint({
          view,
          host: config.httpHost,
          port: config.httpPort,
          metrics,
          health: () => {
            // A deleted or replaced database file is never healthy, even before the next sweep notices.
            try {
              db.assertSameFile();
            } catch (error) {
              return { healthy: false, reason: (error as Error).message };
            }
            return judgeHealth(accountHealth(db, config.accountIds), maxAgeMs, new Date());
          },
          logger,
        });
      }
      // Webhook alerts: pending ones from an earlier process are sent now; delivery never blocks a sweep.
      const alerting = new Alerting(config, { db, store, logger, ...(metrics === null ? {} : { counters: metrics }) });
      alerting.start({ checkEveryMs: Math.min(60_000, Math.max(1000, Math.round(healthMaxAgeMs(config) / 4))) });
      try {
        const clean = await runDaemon(config, deps, context.io.signal, {
          beforeSweep: () => db.assertSameFile(),
          onSweep: (result) => {
            metrics?.record(result);
            alerting.afterRun();
          },
        });
        logger.info(clean ? 'daemon stopped' : 'daemon stopped with a sweep still running');
        return clean ? 0 : 1;
      } finally {
        await alerting.stop();
        await http?.close();
        view?.close();
      }
    });
  },
};
