/**
 * Upgrade benchmark and proof (issue 12): the one-year history written by tierwatch 0.1.0's own
 * code (its bench/year-history.ts, from commit dc26057, unpacked with `git archive`), upgraded in
 * place by this tierwatch.
 *
 * - 0.1.0's answers to the questions of test/fixtures/upgrade-answers.ts (changes, snapshot --at,
 *   diff, history, runs) are taken with 0.1.0's query code, then again after the upgrade with this
 *   one: every answer must be the same (the benchmark fails otherwise).
 * - First the upgrade is killed (SIGKILL) half-way, after the versions were copied into the new
 *   table: the database file must be byte for byte what it was, and 0.1.0's views still answer.
 * - Then the real upgrade, timed, and the sizes before and after.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import * as query from '../src/query/index.ts';
import { defaultMigrationsFolder, openDatabase } from '../src/store/db.ts';
import { silentLogger } from '../src/log.ts';
import { answers, type QueryModule } from '../test/fixtures/upgrade-answers.ts';
import { ROOT } from './paths.ts';
import { nowMs, round } from './stats.ts';

/** tierwatch 0.1.0. */
export const V010_COMMIT = 'dc26057';
const SYMBOLS = ['S000042-USD', 'S000001-USD', 'S009999-USD'];

type FeedRow = { change: string; changed_columns: string[]; before: unknown; after: unknown };

/** A v2 feed row without what 0.1.0 did not have. */
function strip010(row: object): FeedRow {
  const { classification: _c, baseline: _b, ...rest } = row as FeedRow & { classification: unknown; baseline: unknown };
  return rest;
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export async function benchUpgrade() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-bench-upgrade-'));
  try {
    // 0.1.0's sources, with this checkout's node_modules (the same dependencies).
    const old = path.join(dir, 'tierwatch-0.1.0');
    fs.mkdirSync(old);
    const archive = execFileSync('git', ['-C', ROOT, 'archive', V010_COMMIT], { maxBuffer: 256 * 1024 * 1024 });
    execFileSync('tar', ['-x', '-C', old], { input: archive });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(old, 'node_modules'));

    const dbPath = path.join(dir, 'year-0.1.0.db');
    let began = nowMs();
    const { buildYearHistory } = (await import(
      path.join(old, 'bench', 'year-history.ts')
    )) as typeof import('./year-history.ts');
    const year = buildYearHistory(dbPath);
    const buildSeconds = (nowMs() - began) / 1000;
    const bytesBefore = fs.statSync(dbPath).size;

    const oldQuery = (await import(path.join(old, 'src', 'query', 'index.ts'))) as unknown as QueryModule;
    const { openDatabase: openOld } = (await import(
      path.join(old, 'src', 'store', 'db.ts')
    )) as typeof import('../src/store/db.ts');
    const reader = openOld(dbPath, { readonly: true, migrationsFolder: path.join(old, 'migrations') });
    const expected = answers(oldQuery, reader, SYMBOLS);
    // The whole feed row by row as well, to say exactly which rows differ if its digest does.
    const oldFeed = [...oldQuery.changesBetween(reader, {}, {}, {})] as FeedRow[];
    const oldCounts = reader.sqlite
      .prepare(
        'SELECT (SELECT count(*) FROM tier_versions) AS versions, (SELECT count(*) FROM tier_changes) AS changes',
      )
      .get();
    reader.close();

    // The upgrade killed half-way (see test/fixtures/upgrade-crash-child.ts).
    const hashBefore = sha256File(dbPath);
    const folder = path.join(dir, 'migrations-with-crash');
    fs.cpSync(defaultMigrationsFolder(), folder, { recursive: true });
    const step2 = fs.readdirSync(folder).find((name) => name.endsWith('_history_v2.sql'))!;
    const sql = fs.readFileSync(path.join(folder, step2), 'utf8');
    fs.writeFileSync(
      path.join(folder, step2),
      sql.replace(/(?=DROP TABLE `tier_version`;)/, 'SELECT crash();--> statement-breakpoint\n'),
    );
    began = nowMs();
    const child = spawnSync(
      process.execPath,
      [path.join(ROOT, 'test', 'fixtures', 'upgrade-crash-child.ts'), dbPath, folder],
      { encoding: 'utf8' },
    );
    const killedAfterSeconds = (nowMs() - began) / 1000;
    if (child.signal !== 'SIGKILL') {
      throw new Error(`upgrade: the crashing upgrade was not killed: ${child.status} ${child.stdout}${child.stderr}`);
    }
    const walAfterKill = fs.existsSync(`${dbPath}-wal`) ? fs.statSync(`${dbPath}-wal`).size : 0;
    const afterKill = new Database(dbPath, { readonly: true });
    const killedCounts = afterKill
      .prepare(
        'SELECT (SELECT count(*) FROM tier_versions) AS versions, (SELECT count(*) FROM tier_changes) AS changes',
      )
      .get();
    afterKill.close();
    const intactAfterKill =
      sha256File(dbPath) === hashBefore && JSON.stringify(killedCounts) === JSON.stringify(oldCounts);
    if (!intactAfterKill) throw new Error('upgrade: the database changed after a killed upgrade');

    // The upgrade itself, as the daemon runs it at start.
    began = nowMs();
    const db = openDatabase(dbPath, { logger: silentLogger() });
    const upgradeSeconds = (nowMs() - began) / 1000;
    const migrationsApplied = db.migrationsApplied;
    db.close();
    const bytesAfterUpgrade = fs.statSync(dbPath).size;
    const vacuum = new Database(dbPath);
    vacuum.exec('VACUUM');
    vacuum.close();
    const bytesAfterVacuum = fs.statSync(dbPath).size;

    const upgraded = openDatabase(dbPath, { readonly: true });
    const actual = answers(query, upgraded, SYMBOLS);
    const newFeed = [...query.changesBetween(upgraded, {}, {}, { includeBaseline: true })];
    upgraded.close();
    const differing = expected
      .filter((answer, i) => JSON.stringify(answer) !== JSON.stringify(actual[i]))
      .map((answer) => answer.question);
    // 0.1.0's bulk benchmark writer (not its HistoryStore) records an edit that happens to leave
    // max_notional as it was as a `changed` row with changed_columns ["max_notional"]; HistoryStore
    // never writes such a row (a change needs a value that differs), and the derived feed gives it
    // changed_columns []. Those rows, and only those, may differ: checked row by row.
    const rowDifferences =
      oldFeed.length !== newFeed.length
        ? [-1]
        : oldFeed.flatMap((row, i) => (JSON.stringify(row) === JSON.stringify(strip010(newFeed[i]!)) ? [] : [i]));
    const noOpRows = rowDifferences.filter((i) => {
      const before = oldFeed[i];
      const after = i >= 0 ? strip010(newFeed[i]!) : undefined;
      return (
        before !== undefined &&
        after !== undefined &&
        before.change === 'changed' &&
        JSON.stringify(before.before) === JSON.stringify(before.after) &&
        JSON.stringify({ ...before, changed_columns: [] }) === JSON.stringify(after)
      );
    });
    const unexplained = differing.filter(
      (question) => !(question === 'changes' && rowDifferences.length === noOpRows.length),
    );
    if (unexplained.length > 0 || rowDifferences.length !== noOpRows.length) {
      throw new Error(
        `upgrade: answers differ after the upgrade: ${unexplained.slice(0, 5).join('; ')} (${rowDifferences.length - noOpRows.length} feed rows unexplained)`,
      );
    }

    return {
      from_version: `0.1.0 (${V010_COMMIT})`,
      history: {
        runs: year.runs,
        tier_versions: year.versions,
        tier_changes: year.changes,
        built_by_0_1_0_s: round(buildSeconds, 1),
      },
      questions_compared: expected.length,
      rows_compared: expected.reduce((sum, answer) => sum + answer.rows, 0),
      answers_identical: differing.length === 0,
      differing_questions: differing,
      feed_rows_compared: oldFeed.length,
      feed_rows_differing: rowDifferences.length,
      feed_rows_differing_why:
        rowDifferences.length === 0
          ? null
          : `0.1.0's bulk benchmark writer stored ${noOpRows.length} 'changed' row(s) whose values did not change (changed_columns ["max_notional"]); HistoryStore never writes one, and the derived feed shows changed_columns []`,
      kill_mid_upgrade: {
        killed_after_s: round(killedAfterSeconds, 1),
        wal_bytes_left: walAfterKill,
        database_file_unchanged: true,
        views_answer: killedCounts,
      },
      migrations_applied: migrationsApplied,
      upgrade_s: round(upgradeSeconds, 1),
      bytes_0_1_0: bytesBefore,
      bytes_after_upgrade: bytesAfterUpgrade,
      bytes_after_upgrade_and_vacuum: bytesAfterVacuum,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
