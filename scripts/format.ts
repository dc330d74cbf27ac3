/**
 * `npm run format`: Prettier over the tree, then ESLint's fixes for what Prettier's line breaks
 * expose, until neither has anything left to do.
 *
 * Why not one `prettier --write`: when Prettier moves a long `if`'s body onto a line of its own,
 * the `curly` rule (eslint.config.js) wants braces around it, which `eslint --fix` adds unformatted;
 * Prettier then formats them, and that can push an `else` body onto its own line in turn. Each round
 * lints only the files Prettier changed, so a round costs seconds; the tree settles in two or three.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'node_modules', '.bin');
const MAX_ROUNDS = 5;
const LINTED = /\.(ts|js)$/;

function run(tool: string, args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(join(BIN, tool), args, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout };
}

for (let round = 1; round <= MAX_ROUNDS; round += 1) {
  // Exit status 1 only says that some files differ; 2 is Prettier's own failure.
  const listed = run('prettier', ['--list-different', '.']);
  if (listed.status !== 0 && listed.status !== 1) process.exit(listed.status ?? 2);
  const changed = listed.stdout.split('\n').filter((line) => line !== '');
  if (changed.length === 0) {
    console.log(`format: the tree is formatted (${round - 1} round${round === 2 ? '' : 's'} of changes)`);
    process.exit(0);
  }
  console.log(`format: round ${round}: ${changed.length} file${changed.length === 1 ? '' : 's'}`);
  const written = run('prettier', ['--write', '--log-level', 'warn', ...changed]);
  if (written.status !== 0) process.exit(written.status ?? 2);
  const code = changed.filter((file) => LINTED.test(file));
  // Its exit status is not ours to judge: what --fix cannot fix is `npm run lint`'s to report.
  if (code.length > 0) run('eslint', ['--fix', '--quiet', ...code]);
}
console.error(`format: the tree has not settled after ${MAX_ROUNDS} rounds; run \`npm run lint\` to see why`);
process.exit(1);
