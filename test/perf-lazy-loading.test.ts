/**
 * Start-up cost and daemon memory (issue 6): which packages a process loads. Each case runs in a
 * fresh Node process that records every module it loads (module.registerHooks), so what another
 * test in this file loaded cannot hide a regression. No timings: a package that is loaded is the
 * finding, whatever the machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const SRC = path.resolve(import.meta.dirname, '..', 'src');
const url = (file: string) => pathToFileURL(path.join(SRC, file)).href;

/**
 * Runs `body` (an async module body, with `record` in scope) in a child and returns the packages
 * it loaded (node_modules names) and what the body returned.
 */
function loadedBy(body: string): { packages: string[]; drizzleFiles: string[]; result: unknown } {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = new Set();
    const drizzleFiles = new Set();
    registerHooks({
      load(url, context, next) {
        const match = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\/(.*)$/.exec(url);
        if (match) loaded.add(match[1]);
        if (match && match[1] === 'drizzle-orm') drizzleFiles.add(match[2]);
        return next(url, context);
      },
    });
    const result = await (async () => { ${body} })();
    process.stdout.write(JSON.stringify({ packages: [...loaded].sort(), drizzleFiles: [...drizzleFiles].sort(), result }));
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as { packages: string[]; drizzleFiles: string[]; result: unknown };
}

/** The web view's chart library and its DOM: loaded by the first chart drawn, by nothing else. */
const CHART = ['@observablehq/plot', 'd3-scale', 'linkedom'];

/** A CliIo for runCli in the child: real (discarding) streams, no environment. */
const io = `{
  stdout: new (await import('node:stream')).PassThrough().resume(),
  stderr: new (await import('node:stream')).PassThrough().resume(),
  env: {}, stdoutIsTTY: false, signal: new AbortController().signal,
}`;

test('tierwatch --version loads no database, logging, network or metrics package', () => {
  const { packages, result } = loadedBy(`
    const { runCli } = await import(${JSON.stringify(url('program.ts'))});
    return runCli(['--version'], ${io});
  `);
  assert.equal(result, 0);
  assert.ok(packages.includes('commander'), `the probe sees packages: ${packages.join(', ')}`);
  for (const heavy of ['better-sqlite3', 'drizzle-orm', 'pino', 'pino-pretty', 'ws', 'prom-client', 'zod', ...CHART]) {
    assert.ok(!packages.includes(heavy), `${heavy} is loaded by --version (${packages.join(', ')})`);
  }
});

test("a writable open migrates in process with drizzle's migrator, loaded only through its CommonJS SQLite entries, first start or restart", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-lazy-'));
  try {
    const dbPath = path.join(dir, 'nested', 'history.db');
    const { packages, drizzleFiles, result } = loadedBy(`
      const { openDatabase } = await import(${JSON.stringify(url('store/db.ts'))});
      const first = openDatabase(${JSON.stringify(dbPath)});
      const applied = first.migrationsApplied;
      const tables = first.sqlite.prepare("SELECT count(*) FROM sqlite_master WHERE name IN ('run_ledger', 'tier_version', 'tier_change_feed', 'tier_changes')").pluck().get();
      first.close();
      const again = openDatabase(${JSON.stringify(dbPath)});
      const appliedAgain = again.migrationsApplied;
      again.close();
      return { applied, tables, appliedAgain };
    `);
    // Every migration the journal lists (counted, so a new migration does not break this test).
    const journal = JSON.parse(
      fs.readFileSync(path.resolve(SRC, '..', 'migrations', 'meta', '_journal.json'), 'utf8'),
    ) as { entries: unknown[] };
    assert.deepEqual(result, { applied: journal.entries.length, tables: 4, appliedAgain: 0 });
    assert.ok(packages.includes('better-sqlite3'));
    // The migrator runs in this process now (no child), but through drizzle's CommonJS entries: the
    // ESM entry would load every dialect drizzle has (~800 ms and ~250 MB against ~130 ms and ~23 MB).
    assert.ok(
      drizzleFiles.some((file) => file.startsWith('better-sqlite3/migrator')),
      `drizzle's migrator ran here: ${drizzleFiles.join(', ')}`,
    );
    assert.deepEqual(
      drizzleFiles.filter((file) => !file.endsWith('.cjs')),
      [],
      'only CommonJS files of drizzle are loaded',
    );
    // (drizzle's shared SQL module pulls a few pg-core column files in; the other dialects stay out.)
    for (const dialect of ['mysql-core/', 'singlestore-core/', 'gel-core/', 'node-postgres/', 'mysql2/']) {
      assert.ok(
        !drizzleFiles.some((file) => file.startsWith(dialect)),
        `${dialect} is loaded: ${drizzleFiles.length} drizzle files`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a query command loads neither the collector (ws), metrics, drizzle nor pino-pretty', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-lazy-'));
  try {
    const dbPath = path.join(dir, 'history.db');
    // The database is made by another process: migrating loads drizzle, and that is not what is measured.
    const made = spawnSync(process.execPath, [path.join(SRC, 'cli.ts'), 'migrate', '--db', dbPath], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(made.status, 0, made.stderr);
    const { packages, result } = loadedBy(`
      const { runCli } = await import(${JSON.stringify(url('program.ts'))});
      return runCli(['runs', '--db', ${JSON.stringify(dbPath)}, '--format', 'json'], ${io});
    `);
    assert.equal(result, 0);
    assert.ok(packages.includes('better-sqlite3'));
    for (const heavy of ['ws', 'prom-client', 'drizzle-orm', 'pino-pretty', ...CHART]) {
      assert.ok(!packages.includes(heavy), `${heavy} is loaded by a query command (${packages.join(', ')})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the web view loads Plot and linkedom when it draws its first chart, not before', () => {
  const { packages, result } = loadedBy(`
    await import(${JSON.stringify(url('web/server.ts'))});
    await import(${JSON.stringify(url('web/report.ts'))});
    const { ladderChart } = await import(${JSON.stringify(url('web/ladder-chart.ts'))});
    const before = [...loaded];
    const step = { leverage: '10', initial_margin: 0.1, maintenance_margin: 0.05, max_notional: 1000 };
    const chart = await ladderChart([{ role: 'at', label: 'now', steps: [step] }], 'a ladder', 'l');
    return { before, drawn: chart.text.includes('data-leverage="10"') };
  `);
  const { before, drawn } = result as { before: string[]; drawn: boolean };
  assert.ok(drawn);
  for (const name of CHART) {
    assert.ok(!before.includes(name), `${name} is loaded by the web view's modules (${before.join(', ')})`);
    assert.ok(packages.includes(name), `${name} draws the chart (${packages.join(', ')})`);
  }
});
