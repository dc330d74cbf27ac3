/**
 * A fleet of `tierwatch run` processes against one Postgres history, for the failover test: each a
 * real process (the built CLI dist/src/cli.js when TIERWATCH_TEST_CLI names it, src/cli.ts
 * otherwise) on this Node, its JSON log lines parsed as they arrive and stamped with the test's
 * monotonic clock, so a takeover can be timed from the moment a fault was made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** The CLI the fleet runs: TIERWATCH_TEST_CLI (e.g. dist/src/cli.js after `npm run build`), else the sources. */
export const FLEET_CLI = path.resolve(REPO, process.env.TIERWATCH_TEST_CLI ?? 'src/cli.ts');

export interface LogLine {
  /** performance.now() in the test process when the line arrived. */
  at: number;
  line: Record<string, unknown>;
}

export interface Member {
  name: string;
  child: ChildProcess;
  pid: number;
  lines: LogLine[];
  exited: Promise<number | string>;
  alive: boolean;
  frozen: boolean;
  /** The epochs this member said it leads, in order, with when it said so. */
  elections(): Array<{ epoch: number; at: number }>;
  stderrTail(): string;
}

export function spawnMember(name: string, env: Record<string, string>): Member {
  const child = spawn(process.execPath, [FLEET_CLI, 'run'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: LogLine[] = [];
  let raw = '';
  let pending = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const at = performance.now();
    raw = (raw + chunk).slice(-20_000);
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const text of parts) {
      if (text.trim() === '') continue;
      try {
        lines.push({ at, line: JSON.parse(text) as Record<string, unknown> });
      } catch {
        lines.push({ at, line: { msg: text } });
      }
    }
  });
  const member: Member = {
    name,
    child,
    pid: child.pid!,
    lines,
    alive: true,
    frozen: false,
    exited: once(child, 'exit').then(([code, signal]) => {
      member.alive = false;
      return (code ?? String(signal)) as number | string;
    }),
    elections: () =>
      lines.flatMap(({ at, line }) => {
        const match = typeof line.msg === 'string' ? /^leading \(epoch (\d+)\)$/.exec(line.msg) : null;
        return match === null ? [] : [{ epoch: Number(match[1]), at }];
      }),
    stderrTail: () => raw.slice(-3000),
  };
  return member;
}

/** Polls `probe` until it returns a value other than undefined; throws after `timeoutMs` with `what`. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
