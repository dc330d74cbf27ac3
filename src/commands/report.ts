/**
 * `tierwatch report --out FILE.html [--symbol S]...`: the web view's overview and the ladders of the
 * chosen symbols as one self-contained HTML file (no network needed to open it).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { collectValues, timeHelp } from '../output/query-command.ts';
import { historyOpener } from '../query/source-opener.ts';
import { TierwatchError } from '../errors.ts';
import type { CommandSpec } from './context.ts';
import { optionText } from './options.ts';

export const reportCommand: CommandSpec = {
  name: 'report',
  summary: 'write the overview and the tier ladders of chosen symbols as one self-contained HTML file',
  flags: ['db'],
  configure(command) {
    command
      .requiredOption('--out <file>', 'the HTML file to write (replaced if it exists)')
      .option('--symbol <symbol>', 'a symbol whose ladder to include (`*` is a wildcard); repeatable', collectValues)
      .option('--account <pattern>', 'only the ladders of this account; repeatable', collectValues)
      .option('--at <time>', timeHelp('the ladders at this point (default the last sweep)'))
      .option('--compare <time>', timeHelp('a second point drawn over each ladder'));
  },
  async run(context) {
    const { renderReport } = await import('../web/report.ts');
    const { healthMaxAgeMs } = await import('../collect/health.ts');
    const config = context.config();
    const out = optionText(context.options.out);
    if (out.trim() === '') throw new TierwatchError('USAGE', 'Expected `--out` to name a file, got "".');
    const now = new Date();
    // Either backend; on Postgres the whole report is read in one read-only transaction.
    const opener = await historyOpener(config.database);
    let text: string;
    try {
      const history = await opener.open();
      try {
        text = await renderReport(
          {
            history,
            now,
            source: opener.name,
            healthMaxAgeMs: healthMaxAgeMs(config),
            standalone: true,
            accounts: context.io.env.QFEX_ACCOUNT_IDS === undefined ? null : config.accountIds,
          },
          {
            symbols: (context.options.symbol as string[] | undefined) ?? [],
            ...(context.options.at === undefined ? {} : { at: optionText(context.options.at) }),
            ...(context.options.compare === undefined ? {} : { compare: optionText(context.options.compare) }),
            ...(context.options.account === undefined ? {} : { account: context.options.account as string[] }),
          },
        );
      } finally {
        await history.close();
      }
    } finally {
      opener.close();
    }
    // Written beside the target and renamed over it: a reader never sees half a report.
    const temporary = `${out}.${process.pid}.tmp`;
    try {
      writeFileSync(temporary, text, { mode: 0o644 });
      renameSync(temporary, out);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
      throw new TierwatchError('USAGE', `Cannot write \`--out\` ${JSON.stringify(out)} (${code}).`, { cause: error });
    }
    context.print(`tierwatch report: wrote ${out} (${Math.round(Buffer.byteLength(text) / 1024)} KiB)`);
    return 0;
  },
};
