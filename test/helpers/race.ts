/**
 * Races `count` processes: each runs `racer` with `target` and a common start instant `leadMs`
 * ahead (far enough for every one to have loaded what it needs, so they act at the same moment),
 * and prints its outcome as one JSON line. Resolves with the outcomes, in spawn order.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export async function raceProcesses<Outcome>(
  racer: string,
  target: string,
  leadMs: number,
  count: number,
): Promise<Outcome[]> {
  const startAt = Date.now() + leadMs;
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, [racer, target, String(startAt)], { stdio: ['ignore', 'pipe', 'inherit'] }),
  );
  const outputs = children.map((child) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    return once(child, 'exit').then(() => out);
  });
  return (await Promise.all(outputs)).map((out) => JSON.parse(out.trim()) as Outcome);
}
