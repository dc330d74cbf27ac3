/**
 * `tierwatch serve`: the read-only web view of the history (pages, ladder charts, the JSON API) on
 * loopback by default. Any other address has to be asked for with --host, and a warning is
 * printed: the view then answers anyone who can reach the port, so set TIERWATCH_HTTP_TOKEN.
 * Runs until SIGINT/SIGTERM.
 */
import { integerOption, optionText } from './options.ts';
import type { CommandSpec } from './context.ts';

export const DEFAULT_SERVE_PORT = 9465;
export const DEFAULT_SERVE_HOST = '127.0.0.1';

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary:
    'a read-only web view of the history: overview, tier-ladder charts, changes, diff, runs, and a JSON API (loopback by default)',
  flags: ['db'],
  configure(command) {
    command
      .option('--port <port>', `the port to listen on; 0 picks a free one (default ${DEFAULT_SERVE_PORT})`)
      .option(
        '--host <address>',
        `the address to listen on (default ${DEFAULT_SERVE_HOST}: this machine only); anything else prints a warning`,
      );
  },
  async run(context) {
    // Loaded here: no other command pays for the web view's modules.
    const { startWebServer, isLoopback } = await import('../web/server.ts');
    const { readToken, tokenSource } = await import('../web/auth.ts');
    const { healthMaxAgeMs } = await import('../collect/health.ts');
    const config = context.config();
    const port = integerOption(context.options.port ?? String(DEFAULT_SERVE_PORT), '--port', 0, 65535)!;
    const host = context.options.host === undefined ? DEFAULT_SERVE_HOST : optionText(context.options.host).trim();
    const token = tokenSource(context.io.env);
    // A missing or empty token file is a configuration error now, not a 500 on the first request.
    if (token !== null) readToken(token);
    if (!isLoopback(host)) {
      context.io.stderr.write(
        `tierwatch serve: warning: listening on ${host}, not loopback: anyone who can reach port ${port === 0 ? '(chosen)' : port} can read the history` +
          `${token === null ? '; set TIERWATCH_HTTP_TOKEN (or TIERWATCH_HTTP_TOKEN_FILE) to require a token' : ' with the token'}.\n`,
      );
    }
    const { historyOpener } = await import('../query/source-opener.ts');
    const history = await historyOpener(config.database);
    // One read now, so an unreachable or unmigrated Postgres stops the start instead of failing
    // every request (a SQLite file was checked when it was opened).
    await (await history.open()).close();
    const server = await startWebServer({
      history,
      token,
      healthMaxAgeMs: healthMaxAgeMs(config),
      // The accounts of QFEX_ACCOUNT_IDS when it is set; otherwise every account the ledger knows.
      accounts: context.io.env.QFEX_ACCOUNT_IDS === undefined ? null : config.accountIds,
      logger: context.logger(),
      host,
      port,
    });
    context.print(
      `tierwatch serve: the read-only view of ${history.name} is at ${server.url}${token === null ? '' : ' (token required)'}; Ctrl-C stops it`,
    );
    const signal = context.io.signal;
    if (!signal.aborted) {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    await server.close();
    return 0;
  },
};
