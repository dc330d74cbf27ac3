/**
 * `tierwatch run`: the daemon. A sweep at start, then one per firing of TIERWATCH_SCHEDULE (UTC).
 * SIGTERM/SIGINT stop it cleanly: the sweep in flight is aborted and recorded as such, the database
 * is closed with its WAL checkpointed, and the exit code is 0.
 */
import { describeConfig, requireCredentials } from '../config.ts';
import { runDaemon } from '../collect/daemon.ts';
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
    return withWriter(context, async (deps) => {
      deps.store.bindEndpoint(config.endpoint);
      const clean = await runDaemon(config, deps, context.io.signal);
      logger.info(clean ? 'daemon stopped' : 'daemon stopped with a sweep still running');
      return clean ? 0 : 1;
    });
  },
};
