/**
 * `tierwatch run` in this process with its HTTP server on a free loopback port: the shape four
 * tests share (health, metrics, the image's health check, the replaced database). Resolves once the
 * server listens and the first sweep is stored; `stop()` sends the shutdown and returns the exit code.
 */
import { PassThrough } from 'node:stream';
import { runCli } from '../../src/program.ts';
import { LogCapture, type Harness } from './harness.ts';

export interface HttpDaemon {
  logs: LogCapture;
  /** http://127.0.0.1:PORT, no trailing slash. */
  base: string;
  port: number;
  stop(): Promise<number>;
}

/**
 * Resolves with the first parsed log line that satisfies `predicate`. The timeout only guards
 * against a hang: on a loaded machine a daemon's start and first sweep can take many seconds.
 */
export async function waitForLogLine(
  logs: LogCapture,
  predicate: (line: Record<string, unknown>) => boolean,
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = logs.lines.find(predicate);
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`timed out waiting for a log line in:\n${logs.text().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function startHttpDaemon(h: Harness, env: Record<string, string> = {}): Promise<HttpDaemon> {
  const logs = new LogCapture();
  const shutdown = new AbortController();
  const exit = runCli(['run'], {
    stdout: new PassThrough().resume(),
    stderr: new PassThrough().resume(),
    // A schedule that never fires during a test: the start-up sweep is the only one.
    env: {
      ...h.env,
      TIERWATCH_HTTP_PORT: '0',
      TIERWATCH_HTTP_HOST: '127.0.0.1',
      TIERWATCH_SCHEDULE: '0 0 1 1 *',
      TIERWATCH_DB: `${h.dir}/daemon.db`,
      ...env,
    },
    stdoutIsTTY: false,
    signal: shutdown.signal,
    logDestination: logs,
  });
  const stop = async (): Promise<number> => {
    shutdown.abort();
    return exit;
  };
  try {
    const listening = await waitForLogLine(logs, (line) => line.msg === 'serving /healthz and /metrics');
    await waitForLogLine(logs, (line) => typeof line.msg === 'string' && line.msg.startsWith('sweep ok'));
    const port = Number(listening.port);
    return { logs, base: `http://127.0.0.1:${port}`, port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
