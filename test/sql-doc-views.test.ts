/**
 * docs/sql.md documents each SQL view column by column; this keeps that documentation true. The
 * column lists are read from the page's tables and compared with the views of a freshly migrated
 * database (not with the schema's own constants, which could drift together with the page).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/store/db.ts';

const PAGE = readFileSync(new URL('../docs/sql.md', import.meta.url), 'utf8');
const VIEWS = ['runs', 'tier_versions', 'tiers_current', 'tier_changes'];

/** The first column of the markdown table under the heading "### `view`". */
function documentedColumns(view: string): string[] {
  const heading = PAGE.indexOf(`### \`${view}\``);
  assert.ok(heading >= 0, `docs/sql.md has a "### \`${view}\`" section`);
  const section = PAGE.slice(heading).split('\n').slice(1);
  const columns: string[] = [];
  let inTable = false;
  for (const line of section) {
    if (line.startsWith('|')) {
      inTable = true;
      const cell = line.split('|')[1]!.trim();
      const name = /^`([a-z_]+)`$/.exec(cell)?.[1];
      if (name !== undefined) columns.push(name);
    } else if (inTable) {
      break;
    }
  }
  return columns;
}

test('docs/sql.md documents every column of every view, in order, and nothing else', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-sql-doc-'));
  const db = openDatabase(join(dir, 'views.db'));
  try {
    for (const view of VIEWS) {
      const actual = (
        db.sqlite.prepare(`SELECT name FROM pragma_table_info(?)`).all(view) as Array<{ name: string }>
      ).map((row) => row.name);
      assert.ok(actual.length > 0, `${view} exists`);
      assert.deepEqual(documentedColumns(view), actual, `docs/sql.md's table for ${view}`);
    }
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
