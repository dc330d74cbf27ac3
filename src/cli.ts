#!/usr/bin/env node
/**
 * The `tierwatch` executable. The first SIGINT/SIGTERM asks the running command to stop cleanly;
 * a second one forces the process out at once.
 */

// better-sqlite3 13 crashes the process (a segfault, no message) on Node older than 22, so check
// before anything native is loaded: the program itself is imported only after this check.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(
    `tierwatch needs Node.js 22 or newer (24 LTS recommended); this is ${process.version} at ${process.execPath}.\n` +
      'In a clone of the repository, run it through npm or npx (they use the Node 24 the project installs), or put node_modules/.bin first on PATH.\n',
  );
  process.exit(2);
}

const { runCli } = await import('./program.ts');
const { eventLine, noColor } = await import('./log.ts');

// Signals are log events too: a JSON line when stderr is not a terminal (a log shipper reads every
// line of it), a human line on a terminal.
const human = { pretty: process.stderr.isTTY === true, color: process.stderr.isTTY === true && !noColor(process.env) };

const shutdown = new AbortController();
let signalsSeen = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signalsSeen += 1;
    if (signalsSeen === 1) {
      process.stderr.write(
        eventLine('warn', `${signal} received, stopping (send it again to force)`, { signal }, human),
      );
      // The reason names the signal, so a command can exit with 128 + its number (`query` does).
      shutdown.abort(signal);
    } else {
      process.stderr.write(eventLine('warn', `second ${signal}, exiting now`, { signal }, human));
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
  });
}

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  stdoutIsTTY: process.stdout.isTTY === true,
  stdoutColumns: process.stdout.isTTY === true ? process.stdout.columns : undefined,
  stderrIsTTY: process.stderr.isTTY === true,
  signal: shutdown.signal,
});
