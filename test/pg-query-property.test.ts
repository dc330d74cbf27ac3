/**
 * The query commands answer the same from Postgres as from SQLite (issue 15): random sweep scripts
 * stored in both (test/helpers/twin-history.ts), then random questions asked through the CLI with
 * TIERWATCH_DB set to the SQLite file and to the Postgres URL in turn. `snapshot`, `diff`,
 * `changes` and `history` must print byte-identical stdout and stderr with the same exit code, in
 * every format: the same rows, values and order, the same notes ("Did you mean …?", the baseline
 * left out), the same errors (DB_EMPTY before the history, a bad run id, FROM after TO).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { openDatabase } from '../src/store/db.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { runCliCaptured } from './helpers/harness.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';
import { storeTwice, twinStep, TWIN_T0, type TwinRun } from './helpers/twin-history.ts';

after(stopPgServer);

const FORMATS = ['table', 'json', 'ndjson', 'csv'];
const SYMBOL_PATTERNS = ['META-USD', 'btc-usd', 'META*', '*_USD', 'meta-*', 'NOPE', 'B?C-USD'];
const ACCOUNT_PATTERNS = ['primary', 'sub-*', 'nobody'];

/** A point in time, chosen against the script once it is known. */
type TimePick =
  | { kind: 'run'; index: number; offsetMs: number }
  | { kind: 'runId'; index: number }
  | { kind: 'before' }
  | { kind: 'after' };

const timePick: fc.Arbitrary<TimePick> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('run' as const),
      index: fc.nat(),
      offsetMs: fc.constantFrom(-1, 0, 1, 90_000),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('runId' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'before' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'after' as const }) },
);

interface Question {
  command: 'snapshot' | 'diff' | 'changes' | 'history';
  /** A format, or a terminal of that many columns (a table fitted to its width). */
  format: string | number;
  times: [TimePick, TimePick];
  symbols: string[];
  accounts: string[];
  changesFlags: string[];
}

const question: fc.Arbitrary<Question> = fc.record({
  command: fc.constantFrom('snapshot' as const, 'diff' as const, 'changes' as const, 'history' as const),
  format: fc.oneof(fc.constantFrom(...FORMATS), fc.integer({ min: 40, max: 140 })),
  times: fc.tuple(timePick, timePick),
  symbols: fc.subarray(SYMBOL_PATTERNS, { maxLength: 2 }),
  accounts: fc.subarray(ACCOUNT_PATTERNS, { maxLength: 1 }),
  changesFlags: fc.subarray(['--include-baseline', '--only=tightening', '--change=removed', '--since', '--until']),
});

function timeText(pick: TimePick, runs: readonly TwinRun[]): string {
  switch (pick.kind) {
    case 'before':
      return new Date(TWIN_T0 - 86_400_000).toISOString();
    case 'after':
      return '2027-01-01T00:00:00Z';
    case 'runId':
      // One past the last run names no run: a USAGE error on both.
      return `run:${(pick.index % (runs.length + 1)) + 1}`;
    case 'run': {
      const observed = runs.filter((run) => run.observedAt !== null);
      if (observed.length === 0) return new Date(TWIN_T0).toISOString();
      return new Date(observed[pick.index % observed.length]!.observedAt! + pick.offsetMs).toISOString();
    }
  }
}

/** The command line of a question; every time is explicit, so both backends get the same instants. */
function argvOf(q: Question, runs: readonly TwinRun[]): string[] {
  const [first, second] = q.times.map((pick) => timeText(pick, runs)) as [string, string];
  const filters = q.accounts.map((account) => `--account=${account}`);
  const symbols = q.symbols.map((symbol) => `--symbol=${symbol}`);
  const format = typeof q.format === 'number' ? [] : ['--format', q.format];
  switch (q.command) {
    case 'snapshot':
      return ['snapshot', '--at', first, ...filters, ...symbols, ...format];
    case 'diff':
      return ['diff', first, second, ...filters, ...symbols, ...format];
    case 'history':
      return ['history', q.symbols[0] ?? 'META*', ...filters, ...format];
    case 'changes': {
      const flags = q.changesFlags.flatMap((flag) =>
        flag === '--since' ? ['--since', first] : flag === '--until' ? ['--until', second] : [flag],
      );
      return ['changes', ...flags, ...filters, ...symbols, ...format];
    }
  }
}

async function ask(
  db: string,
  argv: string[],
  columns: number | undefined,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await runCliCaptured(argv, {
    env: { TIERWATCH_DB: db, LOG_LEVEL: 'silent' },
    ...(columns === undefined ? {} : { tty: true, columns }),
  });
  return { code, stdout, stderr };
}

test(
  'random sweep scripts in SQLite and in Postgres: snapshot, diff, changes and history print byte-identical answers',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgquery-'));
    // One database, emptied between cases (cheaper than one migrated database per case).
    const url = await server.createDatabase('queryprop');
    await migratePostgres(url);
    const pool = createPgPool(url);
    let caseNumber = 0;
    let answered = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(twinStep, { minLength: 1, maxLength: 10 }),
          fc.array(question, { minLength: 4, maxLength: 10 }),
          async (steps, questions) => {
            caseNumber += 1;
            await pool.query(
              'TRUNCATE run_ledger, tier_version, meta, alert_outbox, alert_state, leader_lease RESTART IDENTITY CASCADE',
            );
            const dbPath = path.join(dir, `case-${caseNumber}.db`);
            const db = openDatabase(dbPath);
            let runs: TwinRun[];
            try {
              runs = await storeTwice(db, pool, steps);
            } finally {
              db.close();
            }
            for (const q of questions) {
              const argv = argvOf(q, runs);
              const columns = typeof q.format === 'number' ? q.format : undefined;
              const fromSqlite = await ask(dbPath, argv, columns);
              const fromPostgres = await ask(url, argv, columns);
              assert.deepEqual(fromPostgres, fromSqlite, `tierwatch ${argv.join(' ')} (columns ${columns})`);
              if (fromSqlite.code === 0 && fromSqlite.stdout.length > 0) answered += 1;
            }
          },
        ),
        { numRuns: 20 },
      );
      // The questions were not all refusals: most found a history to answer from.
      assert.ok(answered > 30, `${answered} answers compared`);
    } finally {
      await pool.end();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
