/**
 * `tierwatch check`: connect, authenticate and read the first page of tiers for every configured
 * account, writing nothing. The way to test keys, subaccount ids and connectivity.
 */
import { requireCredentials, resolveCredentials } from '../config.ts';
import { coerceError } from '../errors.ts';
import type { CommandSpec } from './context.ts';

export const checkCommand: CommandSpec = {
  name: 'check',
  summary: 'connect, authenticate and read the first page of tiers, writing nothing',
  flags: ['exchange'],
  async run(context) {
    // Loaded here, not at the top: the WebSocket client is no other command's cost.
    const { openSession } = await import('../qfex/client.ts');
    const { validateTierRow } = await import('../qfex/protocol.ts');
    const config = context.config();
    requireCredentials(config);
    const logger = context.logger();
    let failures = 0;
    for (const accountId of config.accountIds) {
      const startedAt = performance.now();
      try {
        const session = await openSession({
          url: config.wsUrl,
          credentials: resolveCredentials(config),
          ...(accountId === 'primary' ? {} : { accountId }),
          ...(config.ca === null ? {} : { ca: config.ca }),
          timeouts: config.timeouts,
          signal: context.io.signal,
          logger: logger.child({ account_id: accountId }),
        });
        try {
          const rows = await session.requestLeveragePage(config.pageSize, 0);
          const tiers = rows.map((row, index) => validateTierRow(row, { offset: index }));
          const symbols = new Set(tiers.map((tier) => tier.symbol));
          const ms = Math.round(performance.now() - startedAt);
          context.print(
            `ok  ${accountId}: authenticated at ${config.endpoint}; first page has ${tiers.length} valid tier(s) across ${symbols.size} symbol(s) (${ms} ms)`,
          );
        } finally {
          session.close();
        }
      } catch (thrown) {
        const error = coerceError(thrown);
        failures += 1;
        context.print(`FAIL ${accountId}: ${error.code}: ${error.message}`);
      }
    }
    return failures === 0 ? 0 : 1;
  },
};
