/**
 * `tierwatch check`: connect, authenticate and read the first page of tiers for every configured
 * account, writing nothing. The way to test keys, subaccount ids and connectivity.
 *
 * `--record FILE` also writes the sessions' frames to FILE as a transcript (credentials removed,
 * see qfex/transcript.ts) and reads every page, exactly as `collect` pages, so that `tierwatch
 * simulate --replay FILE` can answer a whole sweep. Still nothing is written to the database.
 */
import { checkSecretFiles, resolveCredentials } from '../config.ts';
import { coerceError } from '../errors.ts';
import type { CommandSpec } from './context.ts';

export const checkCommand: CommandSpec = {
  name: 'check',
  summary: 'connect, authenticate and read the first page of tiers, writing nothing',
  flags: ['exchange'],
  configure(command) {
    command.option(
      '--record <file>',
      'read every page (as collect does) and write the frames of each session, both directions, with timestamps and without credentials, to FILE as JSON lines',
    );
  },
  async run(context) {
    // Loaded here, not at the top: the WebSocket client is no other command's cost.
    const { openSession } = await import('../qfex/client.ts');
    const { validateTierRow } = await import('../qfex/protocol.ts');
    const { fetchAllTiers } = await import('../qfex/paginate.ts');
    const { TranscriptWriter } = await import('../qfex/transcript.ts');
    const config = context.config();
    checkSecretFiles(config);
    const logger = context.logger();
    const recordPath = typeof context.options.record === 'string' ? context.options.record : undefined;
    const recorder = recordPath === undefined ? null : TranscriptWriter.open(recordPath, { endpoint: config.endpoint });
    let failures = 0;
    try {
      for (const accountId of config.accountIds) {
        const startedAt = performance.now();
        try {
          const credentials = resolveCredentials(config);
          const session = await openSession({
            url: config.wsUrl,
            credentials,
            ...(accountId === 'primary' ? {} : { accountId }),
            ...(config.ca === null ? {} : { ca: config.ca }),
            timeouts: config.timeouts,
            maxPayloadBytes: config.maxFrameBytes,
            signal: context.io.signal,
            logger: logger.child({ account_id: accountId }),
            ...(recorder === null ? {} : { onFrame: recorder.session(credentials) }),
          });
          try {
            let read: string;
            if (recorder === null) {
              const rows = await session.requestLeveragePage(config.pageSize, 0);
              const tiers = rows.map((row, index) => validateTierRow(row, { offset: index }));
              read = `first page has ${tiers.length} valid tier(s) across ${new Set(tiers.map((tier) => tier.symbol)).size} symbol(s)`;
            } else {
              // The same paging as a sweep (page size, overlap, retries), so a replay can answer collect.
              const paged = await fetchAllTiers((limit, offset) => session.requestLeveragePage(limit, offset), {
                pageSize: config.pageSize,
                maxPages: config.maxPages,
                maxTiers: config.maxTiers,
                maxShiftRetries: config.shiftRetries,
                retry: {
                  attempts: config.pageRetries,
                  baseDelayMs: config.backoff.baseMs,
                  maxDelayMs: config.backoff.maxMs,
                },
                signal: context.io.signal,
                logger,
              });
              read = `read ${paged.tiers.length} valid tier(s) across ${new Set(paged.tiers.map((tier) => tier.symbol)).size} symbol(s) in ${paged.pages} page(s)`;
            }
            const ms = Math.round(performance.now() - startedAt);
            context.print(`ok  ${accountId}: authenticated at ${config.endpoint}; ${read} (${ms} ms)`);
          } finally {
            session.close();
          }
        } catch (thrown) {
          const error = coerceError(thrown);
          failures += 1;
          context.print(`FAIL ${accountId}: ${error.code}: ${error.message}`);
        }
      }
    } finally {
      recorder?.close();
    }
    if (recorder !== null) {
      context.print(`transcript: ${recorder.path} (${recorder.frames} frame(s), credentials removed)`);
    }
    return failures === 0 ? 0 : 1;
  },
};
