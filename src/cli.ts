#!/usr/bin/env node
/**
 * The `tierwatch` executable. The first SIGINT/SIGTERM asks the running command to stop cleanly;
 * a second one forces the process out at once.
 */
import { runCli } from './program.ts';

const shutdown = new AbortController();
let signalsSeen = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signalsSeen += 1;
    if (signalsSeen === 1) {
      process.stderr.write(`tierwatch: ${signal} received, stopping (send it again to force)\n`);
      shutdown.abort();
    } else {
      process.stderr.write(`tierwatch: second ${signal}, exiting now\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
  });
}

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  stdoutIsTTY: process.stdout.isTTY === true,
  signal: shutdown.signal,
});
