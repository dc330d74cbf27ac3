/**
 * The error codes are a contract (stored in `runs.error_code`, printed by the CLI): README.md's
 * "Error codes" section documents every code in ERROR_CODES, one table row each, and no code that
 * does not exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/errors.ts';

test("README.md's error-code table lists exactly the codes of src/errors.ts", () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = /^## Error codes\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  assert.ok(section !== undefined, 'README.md has a "## Error codes" section');
  const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1]);
  const known = Object.keys(ERROR_CODES);
  assert.deepEqual(
    known.filter((code) => !documented.includes(code)),
    [],
    'codes missing from the table (the table is generated in /tmp/readme-error-codes.md for the <!-- ERROR-CODES --> marker)',
  );
  assert.deepEqual(documented.filter((code) => !known.includes(code!)), [], 'codes in the table that do not exist');
  assert.equal(new Set(documented).size, documented.length, 'each code has one row');
});
