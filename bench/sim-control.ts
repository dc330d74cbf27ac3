/** Starting and steering bench/sim-process.ts from the benchmark (the simulator's own process). */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface SimProcess {
  readonly url: string;
  readonly pid: number;
  /** Edits ⌈fraction × tiers⌉ tiers in the simulator; resolves with how many. */
  change(fraction: number, round: number): Promise<number>;
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('./sim-process.ts', import.meta.url));

/** Forks the simulator with `tiers` synthetic tiers and resolves once it listens. */
export async function startSimProcess(tiers: number, seed = 1): Promise<SimProcess> {
  const child: ChildProcess = fork(SCRIPT, [String(tiers), String(seed)], {
    execPath: process.execPath,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the simulator process exited early (code ${code})`)));
    child.once('message', (message: { op: string; url: string }) => resolve(message.url));
  });
  child.removeAllListeners('exit');
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  return {
    url,
    pid: child.pid!,
    change(fraction, round) {
      return new Promise((resolve) => {
        child.once('message', (message: { op: string; count: number }) => resolve(message.count));
        child.send({ op: 'change', fraction, round });
      });
    },
    async stop() {
      if (exited) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send({ op: 'stop' });
      await done;
    },
  };
}
