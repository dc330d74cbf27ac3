/**
 * The error codes are a contract (stored in `runs.error_code`, logged as `code`, counted in
 * /metrics): the "Error codes" section of docs/reliability.md documents every code in ERROR_CODES,
 * one table row each, and no code that does not exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/errors.ts';

test("docs/reliability.md's error-code table lists exactly the codes of src/errors.ts", () => {
  const page = readFileSync(new URL('../docs/reliability.md', import.meta.url), 'utf8');
  const section = /^## Error codes\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(page)?.[1];
  assert.ok(section !== undefined, 'docs/reliability.md has a "## Error codes" section');
  const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1]);
  const known = Object.keys(ERROR_CODES);
  assert.deepEqual(
    known.filter((code) => !documented.includes(code)),
    [],
    'codes missing from the table in docs/reliability.md',
  );
  assert.deepEqual(
    documented.filter((code) => !known.includes(code!)),
    [],
    'codes in the table that do not exist',
  );
  assert.equal(new Set(documented).size, documented.length, 'each code has one row');
});
