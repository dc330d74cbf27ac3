/**
 * Every command is documented: README.md's command reference mentions "`tierwatch <name>`" (in
 * backticks, as an inline code span or the start of one) for each command in COMMANDS.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../src/commands/index.ts';

const README = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'README.md');

describe('README command reference', () => {
  it('mentions `tierwatch <name>` for every command', () => {
    assert.ok(fs.existsSync(README), 'README.md exists');
    const text = fs.readFileSync(README, 'utf8');
    const missing = COMMANDS.map((command) => command.name).filter(
      (name) => !new RegExp(`\`tierwatch ${name}(?:[\\s\`])`).test(text),
    );
    assert.deepEqual(missing, [], `commands missing from README.md: ${missing.join(', ')}`);
  });
});
