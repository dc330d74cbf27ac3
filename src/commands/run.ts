/**
 * `tierwatch run`: the daemon. A sweep at start, then one per firing of TIERWATCH_SCHEDULE (UTC).
 * SIGTERM/SIGINT stop it cleanly: the sweep in flight is aborted and recorded as such, the database
 * is closed with its WAL checkpointed, and the exit code is 0.
 */
import { describeConfig, requireCredentials } from '../config.ts';
import { Alerting } from '../alerts/alerting.ts';
import { runDaemon } from '../collect/daemon.ts';
import { accountHealth, healthMaxAgeMs, judgeHealth } from '../collect/health.ts';
import { startHttpEndpoint, type HttpEndpoint } from '../collect/http.ts';
import { SweepMetrics } from '../collect/metrics.ts';
import { packageVersion } from '../paths.ts';
import { withWriter } from './writer.ts';
import type { CommandSpec } from './context.ts';

export const runCommand: CommandSpec = {
  name: 'run',
  summary: 'run the daemon: sweep at start, then on the cron schedule, until SIGTERM or SIGINT',
  flags: ['db', 'exchange', 'schedule'],
  async run(context) {
    const config = context.config();
    requireCredentials(config);
    const logger = context.logger();
    logger.info({ version: packageVersion(), config: describeConfig(config) }, 'tierwatch daemon starting');
    return withWriter(config.dbPath, 'tierwatch run', logger, async ({ db, store }) => {
      const deps = { store, logger };
      store.bindEndpoint(config.endpoint);
      const metrics = new SweepMetrics();
      for (const account of accountHealth(db, config.accountIds)) metrics.seedLastSuccess(account.accountId, account.lastSuccessAt);
      let http: HttpEndpoint | null = null;
      if (config.httpPort !== null) {
        const maxAgeMs = healthMaxAgeMs(config);
        http = await startHttpEndpoint({
          host: config.httpHost,
          port: config.httpPort,
          metrics,
          health: () => judgeHealth(accountHealth(db, config.accountIds), maxAgeMs, new Date()),
          logger,
        });
      }
      // Webhook alerts: pending ones from an earlier process are sent now; delivery never blocks a sweep.
      const alerting = new Alerting(config, { db, store, logger, counters: metrics });
      alerting.start({ checkEveryMs: Math.min(60_000, Math.max(1000, Math.round(healthMaxAgeMs(config) / 4))) });
      try {
        const clean = await runDaemon(config, deps, context.io.signal, {
          onSweep: (result) => {
            metrics.record(result);
            alerting.afterRun();
          },
        });
        logger.info(clean ? 'daemon stopped' : 'daemon stopped with a sweep still running');
        return clean ? 0 : 1;
      } finally {
        await alerting.stop();
        await http?.close();
      }
    });
  },
};
