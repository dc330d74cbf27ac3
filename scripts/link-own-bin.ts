/**
 * Run by `prepare` after the build: links node_modules/.bin/tierwatch to the built CLI.
 *
 * npm links the bins of a project's dependencies, never the project's own, so after `npm ci` a
 * plain `tierwatch` is "command not found" and `npx tierwatch` tries to install this folder as a
 * package. With this link, `npx tierwatch …` runs the checkout's CLI, and so does `tierwatch …` once
 * node_modules/.bin is first on PATH — where the `node` devDependency also puts Node 24.
 */
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'src', 'cli.js');
const link = join(root, 'node_modules', '.bin', 'tierwatch');

if (!existsSync(cli)) {
  console.error(`link-own-bin: ${cli} is missing; run \`npm run build\` first`);
  process.exit(1);
}
// tsc writes files without the execute bit; a bin must have it.
chmodSync(cli, 0o755);
mkdirSync(dirname(link), { recursive: true });
rmSync(link, { force: true });
symlinkSync(relative(dirname(link), cli), link);
