/**
 * A `tierwatch run` daemon in this process, for the tests of daemons sharing one Postgres history
 * (leadership, alerts, the web view): its log lines captured, stopped as SIGTERM would stop it.
 * (Separate processes, for crashes and freezes: test/pg-failover.test.ts.)
 */
import { PassThrough } from 'node:stream';
import type { TestContext } from 'node:test';
import { runCli } from '../../src/program.ts';
import { LogCapture, type Harness } from './harness.ts';
import { waitForLogLine } from './http-daemon.ts';

export interface Daemon {
  logs: LogCapture;
  /** Stops it as a signal would; resolves with its exit code. */
  stop(): Promise<number>;
}

/** Starts `tierwatch run` against the harness's simulator, with `env` on top of the harness's. */
export function startDaemon(h: Harness, env: Record<string, string>): Daemon {
  const logs = new LogCapture();
  const shutdown = new AbortController();
  const exit = runCli(['run'], {
    stdout: new PassThrough().resume(),
    stderr: new PassThrough().resume(),
    env: { ...h.env, LOG_LEVEL: 'info', ...env },
    stdoutIsTTY: false,
    signal: shutdown.signal,
    logDestination: logs,
  });
  return {
    logs,
    stop: () => {
      shutdown.abort();
      return exit;
    },
  };
}

/** A log-line matcher for waitForLogLine: the line's message matches `pattern`. */
export const logMessage = (pattern: RegExp) => (line: Record<string, unknown>) =>
  typeof line.msg === 'string' && pattern.test(line.msg);

/**
 * The usual start of two daemons on a fresh history: the first leads (epoch 1) and has swept, then
 * the second finds it leading. Both are stopped when the test ends. Returns the standby's
 * "standing by" line with the pair.
 */
export async function startLeaderAndStandby(
  t: TestContext,
  h: Harness,
  leaderEnv: Record<string, string>,
  standbyEnv: Record<string, string> = leaderEnv,
): Promise<{ leader: Daemon; standby: Daemon; standing: Record<string, unknown> }> {
  const leader = startDaemon(h, leaderEnv);
  t.after(() => leader.stop());
  await waitForLogLine(leader.logs, logMessage(/^leading \(epoch 1\)$/));
  await waitForLogLine(leader.logs, logMessage(/^sweep ok/));
  const standby = startDaemon(h, standbyEnv);
  t.after(() => standby.stop());
  const standing = await waitForLogLine(standby.logs, logMessage(/^standing by: .* leads \(epoch 1\) until /));
  return { leader, standby, standing };
}
