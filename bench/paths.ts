/** Where the benchmarks find the project: its root, and the built CLI the child processes run. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The compiled CLI (`npm run build`): what users run, so what the process-level figures measure. */
export const BUILT_CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
