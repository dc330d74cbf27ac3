/**
 * Every command is documented: the command reference, docs/cli.md, mentions "`tierwatch <name>`" (in
 * backticks, as an inline code span or the start of one) for each command in COMMANDS.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../src/commands/index.ts';

const REFERENCE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'cli.md');

describe('the command reference (docs/cli.md)', () => {
  it('mentions `tierwatch <name>` for every command', () => {
    assert.ok(fs.existsSync(REFERENCE), 'docs/cli.md exists');
    const text = fs.readFileSync(REFERENCE, 'utf8');
    const missing = COMMANDS.map((command) => command.name).filter(
      (name) => !new RegExp(`\`tierwatch ${name}(?:[\\s\`])`).test(text),
    );
    assert.deepEqual(missing, [], `commands missing from docs/cli.md: ${missing.join(', ')}`);
  });
});
