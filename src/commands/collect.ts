/**
 * `tierwatch collect`: one sweep of every configured account now. Exit 0 when every account's
 * sweep succeeded, 1 when any failed (each is in the ledger), 2 for bad usage or configuration.
 */
import { requireCredentials } from '../config.ts';
import { sweepAll } from '../collect/sweep.ts';
import { withWriter } from './writer.ts';
import type { CommandSpec } from './context.ts';

export const collectCommand: CommandSpec = {
  name: 'collect',
  summary: 'sweep every configured account once now and record the result',
  flags: ['db', 'exchange'],
  async run(context) {
    const config = context.config();
    requireCredentials(config);
    const logger = context.logger();
    return withWriter(config.dbPath, 'tierwatch collect', logger, async ({ store }) => {
      store.markAbandonedRuns(new Date());
      const results = await sweepAll(config, { store, logger }, context.io.signal);
      return results.every((result) => result.ok) && results.length === config.accountIds.length ? 0 : 1;
    });
  },
};
