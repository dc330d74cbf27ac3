/**
 * Every command is documented: the command reference, docs/cli.md, mentions "`tierwatch <name>`" (in
 * backticks, as an inline code span or the start of one) for each command in COMMANDS, and every flag
 * its `--help` lists.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../src/commands/index.ts';
import { runCliCaptured } from './helpers/harness.ts';

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

  it('mentions every flag of every command', async () => {
    const text = fs.readFileSync(REFERENCE, 'utf8');
    const missing: string[] = [];
    for (const { name } of COMMANDS) {
      const help = await runCliCaptured([name, '--help']);
      const flags = new Set([...help.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((match) => match[1]!));
      flags.delete('--help');
      assert.ok(flags.size > 0 || name === 'migrate', `${name} --help lists its flags`);
      for (const flag of flags) if (!new RegExp(`\`${flag}[\\s\`=]`).test(text)) missing.push(`${name} ${flag}`);
    }
    assert.deepEqual(missing, [], `flags missing from docs/cli.md: ${missing.join(', ')}`);
  });
});
