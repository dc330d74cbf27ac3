import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cli, cliJson, tempHistory, tier, type TempHistory } from './query-fixture.ts';
import type { Tier } from '../src/history/tier.ts';

/** The values part of a tier, as `before`/`after` carry it. */
function values(t: Tier) {
  return { initial_margin: t.initial_margin, maintenance_margin: t.maintenance_margin, max_notional: t.max_notional };
}

const T1 = '2026-10-01T00:00:00.000Z';
const T2 = '2026-10-01T00:05:00.000Z';
const T3 = '2026-10-01T00:10:00.000Z';
const T3B = '2026-10-01T00:10:30.000Z';
const T4 = '2026-10-01T00:15:00.000Z';
const T5 = '2026-10-01T00:20:00.000Z';

const metaA = tier('META-USD', '20', 0.05, 0.025, 190_000);
const metaB = tier('META-USD', '20', 0.05, 0.025, 150_000);
const meta10 = tier('META-USD', '10', 0.1, 0.05, 500_000);
const us100 = tier('US_100', '5', 0.2, 0.1, 1_000_000);
const aapl = tier('AAPL-USD', '5', 0.2, 0.1, 2_000_000);
const subMeta = tier('META-USD', '20', 0.05, 0.025, 100_000);
const subMeta2 = tier('META-USD', '20', 0.1, 0.05, 100_000);

describe('query commands against a real history', () => {
  let h: TempHistory;
  const run: Record<string, number> = {};
  before(() => {
    h = tempHistory();
    run.p1 = h.sweep('primary', T1, [metaA, meta10, us100]);
    run.s1 = h.sweep('sub1', T1, [subMeta]);
    run.pFail = h.fail('primary', T2);
    run.p3 = h.sweep('primary', T3, [metaB, meta10]); // A → B, US_100 removed
    run.s3 = h.sweep('sub1', T3B, [subMeta2]); // two columns change
    run.p4 = h.sweep('primary', T4, [metaA, meta10, us100, aapl]); // B → A, US_100 re-listed, AAPL added
    run.p5 = h.sweep('primary', T5, [metaA, meta10, us100]); // AAPL removed again
  });
  after(() => h.close());

  const version = (account: string, t: Tier, valid_from: string, valid_to: string | null, run_id: number) => ({
    account_id: account,
    symbol: t.symbol,
    leverage: t.leverage,
    ...values(t),
    exchange_id: null,
    valid_from,
    valid_to,
    run_id,
    leverage_value: Number(t.leverage),
  });

  describe('snapshot', () => {
    it('at a run’s observed_at includes that run’s changes (valid_from <= T < valid_to)', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['snapshot', '--at', T3]), [
        version('primary', meta10, T1, null, run.p1!),
        version('primary', metaB, T3, T4, run.p3!),
        version('sub1', subMeta, T1, T3B, run.s1!),
      ]);
    });

    it('a millisecond before a run shows the state before it', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['snapshot', '--at', '2026-10-01T00:09:59.999Z']), [
        version('primary', meta10, T1, null, run.p1!),
        version('primary', metaA, T1, T3, run.p1!),
        version('primary', us100, T1, T3, run.p1!),
        version('sub1', subMeta, T1, T3B, run.s1!),
      ]);
    });

    it('defaults to now, and run:<id> means that run’s observed_at', async () => {
      const now = await cliJson(h.dbPath, ['snapshot', '--account', 'primary']);
      assert.deepEqual(now, [
        version('primary', meta10, T1, null, run.p1!),
        version('primary', metaA, T4, null, run.p4!),
        version('primary', us100, T4, null, run.p4!),
      ]);
      const atRun = await cliJson<Array<{ symbol: string }>>(h.dbPath, [
        'snapshot',
        '--at',
        `run:${run.p4}`,
        '--account',
        'primary',
      ]);
      assert.deepEqual(
        atRun.map((row) => row.symbol),
        ['AAPL-USD', 'META-USD', 'META-USD', 'US_100'],
      );
    });

    it('before history begins exits 1 saying when it begins', async () => {
      const result = await cli(h.dbPath, ['snapshot', '--at', '2026-09-30']);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /history begins at 2026-10-01T00:00:00\.000Z/);
      assert.equal(result.stdout, '');
    });

    it('a symbol that never existed is an empty answer, not an error', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['snapshot', '--symbol', 'NOPE-USD']), []);
    });

    it('filters by account and symbol patterns', async () => {
      const rows = await cliJson<Array<{ account_id: string; symbol: string; leverage: string }>>(h.dbPath, [
        'snapshot',
        '--at',
        T3B,
        '--account',
        'sub*',
        '--symbol',
        '*-USD',
      ]);
      assert.deepEqual(
        rows.map((row) => [row.account_id, row.symbol, row.leverage]),
        [['sub1', 'META-USD', '20']],
      );
    });
  });

  describe('diff', () => {
    it('is net of what happened in between: A → B → A and removed-then-relisted vanish', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['diff', T1, T4]), [
        {
          account_id: 'primary',
          symbol: 'AAPL-USD',
          leverage: '5',
          change: 'added',
          changed_columns: [],
          before: null,
          after: values(aapl),
        },
        {
          account_id: 'sub1',
          symbol: 'META-USD',
          leverage: '20',
          change: 'changed',
          changed_columns: ['initial_margin', 'maintenance_margin'],
          before: values(subMeta),
          after: values(subMeta2),
        },
      ]);
    });

    it('leaves out a tier added and removed again in between', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['diff', `run:${run.p3}`, `run:${run.p5}`, '--account', 'primary']), [
        {
          account_id: 'primary',
          symbol: 'META-USD',
          leverage: '20',
          change: 'changed',
          changed_columns: ['max_notional'],
          before: values(metaB),
          after: values(metaA),
        },
        {
          account_id: 'primary',
          symbol: 'US_100',
          leverage: '5',
          change: 'added',
          changed_columns: [],
          before: null,
          after: values(us100),
        },
      ]);
    });

    it('reports a removal with before and a null after; TO defaults to now; the ends are half-open', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['diff', T1, T3]), [
        {
          account_id: 'primary',
          symbol: 'META-USD',
          leverage: '20',
          change: 'changed',
          changed_columns: ['max_notional'],
          before: values(metaA),
          after: values(metaB),
        },
        {
          account_id: 'primary',
          symbol: 'US_100',
          leverage: '5',
          change: 'removed',
          changed_columns: [],
          before: values(us100),
          after: null,
        },
      ]);
      assert.deepEqual(await cliJson(h.dbPath, ['diff', T5]), []);
    });

    it('FROM before history begins exits 1; FROM after TO exits 2', async () => {
      const early = await cli(h.dbPath, ['diff', '2026-09-01', T3]);
      assert.equal(early.code, 1);
      assert.match(early.stderr, /history begins at/);
      const reversed = await cli(h.dbPath, ['diff', T4, T3]);
      assert.equal(reversed.code, 2);
      assert.match(reversed.stderr, /is after TO/);
    });
  });

  describe('changes', () => {
    it('is the feed oldest first, --since inclusive and --until exclusive', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['changes', '--since', T3, '--until', T4]), [
        {
          run_id: run.p3,
          observed_at: T3,
          account_id: 'primary',
          symbol: 'META-USD',
          leverage: '20',
          change: 'changed',
          changed_columns: ['max_notional'],
          before: values(metaA),
          after: values(metaB),
          classification: 'tightening',
          baseline: false,
        },
        {
          run_id: run.p3,
          observed_at: T3,
          account_id: 'primary',
          symbol: 'US_100',
          leverage: '5',
          change: 'removed',
          changed_columns: [],
          before: values(us100),
          after: null,
          classification: 'tightening',
          baseline: false,
        },
        {
          run_id: run.s3,
          observed_at: T3B,
          account_id: 'sub1',
          symbol: 'META-USD',
          leverage: '20',
          change: 'changed',
          changed_columns: ['initial_margin', 'maintenance_margin'],
          before: values(subMeta),
          after: values(subMeta2),
          classification: 'tightening',
          baseline: false,
        },
      ]);
    });

    it('without bounds lists every change, and filters by account and symbol', async () => {
      const all = await cliJson<unknown[]>(h.dbPath, ['changes', '--include-baseline']);
      assert.equal(all.length, 4 + 3 + 3 + 1); // first sweeps (the baseline), run p3 + s3, run p4, run p5
      const news = await cliJson<unknown[]>(h.dbPath, ['changes']);
      assert.equal(news.length, 3 + 3 + 1, 'without --include-baseline, the first sweeps are left out');
      const some = await cliJson<Array<{ run_id: number; change: string }>>(h.dbPath, [
        'changes',
        '--account',
        'primary',
        '--symbol',
        'AAPL-USD',
      ]);
      assert.deepEqual(
        some.map((row) => [row.run_id, row.change]),
        [
          [run.p4, 'added'],
          [run.p5, 'removed'],
        ],
      );
    });

    it('writes NDJSON one object per line and CSV flattened like the tier_changes view', async () => {
      const ndjson = await cli(h.dbPath, ['changes', '--since', T3, '--until', T3B, '--format', 'ndjson']);
      const lines = ndjson.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 2);
      assert.deepEqual(JSON.parse(lines[1]!).after, null);

      const csv = await cli(h.dbPath, ['changes', '--since', T3, '--until', T3B, '--format', 'csv']);
      assert.equal(
        csv.stdout,
        'run_id,observed_at,account_id,symbol,leverage,change,changed_columns,old_initial_margin,new_initial_margin,' +
          'old_maintenance_margin,new_maintenance_margin,old_max_notional,new_max_notional,classification,baseline\n' +
          `${run.p3},${T3},primary,META-USD,20,changed,"[""max_notional""]",0.05,0.05,0.025,0.025,190000,150000,tightening,0\n` +
          `${run.p3},${T3},primary,US_100,5,removed,[],0.2,,0.1,,1000000,,tightening,0\n`,
      );
    });

    it('a table shows the relative move and ends with the last successful sweep', async () => {
      const table = await cli(h.dbPath, ['changes', '--since', T3, '--until', T3B], { tty: true });
      assert.equal(table.code, 0);
      assert.match(table.stdout, /max_notional 190,000 → 150,000 \(−21\.1%\)/);
      assert.match(table.stdout, /Last successful sweep: 2026-10-01T00:20:00\.000Z \(.* ago\)\.\n$/);
    });

    it('rejects a time it does not understand with exit 2 and the accepted forms', async () => {
      const result = await cli(h.dbPath, ['changes', '--since', 'last tuesday']);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /`--since`.*ISO date or instant.*relative age.*run:42.*got "last tuesday"/);
      const missing = await cli(h.dbPath, ['changes', '--since', 'run:999']);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /no run 999/);
      const failed = await cli(h.dbPath, ['changes', '--since', `run:${run.pFail}`]);
      assert.equal(failed.code, 2);
      assert.match(failed.stderr, /has no observed_at.*failed/);
    });
  });

  describe('history', () => {
    it('lists every version of the symbol in time order, across accounts', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['history', 'META-USD']), [
        version('primary', meta10, T1, null, run.p1!),
        version('primary', metaA, T1, T3, run.p1!),
        version('sub1', subMeta, T1, T3B, run.s1!),
        version('primary', metaB, T3, T4, run.p3!),
        version('sub1', subMeta2, T3B, null, run.s3!),
        version('primary', metaA, T4, null, run.p4!),
      ]);
    });

    it('shows a removal and a re-listing in its timeline table', async () => {
      const table = await cli(h.dbPath, ['history', 'US_100'], { tty: true });
      assert.match(table.stdout, /listed; removed at 2026-10-01T00:10:00\.000Z/);
      assert.match(table.stdout, /relisted/);
    });

    it('a symbol that never existed is an empty answer', async () => {
      assert.deepEqual(await cliJson(h.dbPath, ['history', 'NOPE-USD']), []);
      const table = await cli(h.dbPath, ['history', 'NOPE-USD'], { tty: true });
      assert.equal(table.code, 0);
      assert.match(table.stdout, /^No history for NOPE-USD\./);
    });
  });

  describe('runs', () => {
    it('lists the ledger oldest first with the runs view’s columns; --failed and --last narrow it', async () => {
      const all = await cliJson<Array<Record<string, unknown>>>(h.dbPath, ['runs']);
      assert.deepEqual(
        all.map((row) => row.run_id),
        [run.p1, run.s1, run.pFail, run.p3, run.s3, run.p4, run.p5],
      );
      assert.deepEqual(Object.keys(all[0]!), [
        'run_id',
        'account_id',
        'endpoint',
        'started_at',
        'observed_at',
        'finished_at',
        'status',
        'pages',
        'tiers',
        'changes',
        'error_code',
        'error_message',
        'public_key',
        'leader_epoch', // the view's last column: SQLite has no leader
      ]);
      assert.ok(all.every((row) => row.leader_epoch === null));
      const failed = await cliJson<Array<Record<string, unknown>>>(h.dbPath, ['runs', '--failed']);
      assert.deepEqual(
        failed.map((row) => [row.run_id, row.status, row.error_code]),
        [[run.pFail, 'failed', 'QFEX_TIMEOUT']],
      );
      const last = await cliJson<Array<Record<string, unknown>>>(h.dbPath, ['runs', '--last', '2']);
      assert.deepEqual(
        last.map((row) => row.run_id),
        [run.p4, run.p5],
      );
      const bad = await cli(h.dbPath, ['runs', '--last', '0']);
      assert.equal(bad.code, 2);
    });

    it('marks failed runs in the table', async () => {
      const table = await cli(h.dbPath, ['runs'], { tty: true });
      assert.match(table.stdout, /✗ FAILED QFEX_TIMEOUT: page 2 did not arrive in time/);
    });
  });

  describe('query', () => {
    it('runs a read-only statement and keeps the query’s own columns', async () => {
      assert.deepEqual(
        await cliJson(h.dbPath, [
          'query',
          'SELECT account_id, count(*) AS n FROM tiers_current GROUP BY account_id ORDER BY 1',
        ]),
        [
          { account_id: 'primary', n: 3 },
          { account_id: 'sub1', n: 1 },
        ],
      );
      const csv = await cli(h.dbPath, ['query', "SELECT 'a,b' AS x, NULL AS y", '--format', 'csv']);
      assert.equal(csv.stdout, 'x,y\n"a,b",\n');
    });
  });
});

describe('query commands on an empty history', () => {
  let h: TempHistory;
  before(() => {
    h = tempHistory();
  });
  after(() => h.close());

  it('snapshot and diff exit 1 saying the history is empty; changes, runs and history answer empty', async () => {
    for (const argv of [['snapshot'], ['diff', '7d']]) {
      const result = await cli(h.dbPath, argv);
      assert.equal(result.code, 1, argv.join(' '));
      assert.match(result.stderr, /history is empty/i);
    }
    assert.deepEqual(await cliJson(h.dbPath, ['changes']), []);
    assert.deepEqual(await cliJson(h.dbPath, ['runs']), []);
    assert.deepEqual(await cliJson(h.dbPath, ['history', 'META-USD']), []);
    const table = await cli(h.dbPath, ['changes'], { tty: true });
    assert.equal(table.stdout, 'No changes in this window.\nNo sweep has succeeded yet.\n');
  });

  it('a missing database file is exit 1, not a crash', async () => {
    const result = await cli(`${h.dir}/absent.db`, ['snapshot']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no database/i);
  });
});

describe('symbol wildcards', () => {
  let h: TempHistory;
  before(() => {
    h = tempHistory();
    h.sweep('primary', T1, [
      tier('US_100', '5', 0.2, 0.1, 1e6),
      tier('US1100', '5', 0.2, 0.1, 1e6),
      tier('A?B', '5', 0.2, 0.1, 1e6),
      tier('AXB', '5', 0.2, 0.1, 1e6),
      tier('[X]', '5', 0.2, 0.1, 1e6),
      tier('X', '5', 0.2, 0.1, 1e6),
    ]);
  });
  after(() => h.close());

  const symbols = async (...patterns: string[]) =>
    (await cliJson<Array<{ symbol: string }>>(h.dbPath, ['snapshot', ...patterns.flatMap((p) => ['--symbol', p])])).map(
      (row) => row.symbol,
    );

  it('treats only * as a wildcard: _ ? [ ] match themselves', async () => {
    assert.deepEqual(await symbols('US_100'), ['US_100']);
    assert.deepEqual(await symbols('US_*'), ['US_100']);
    assert.deepEqual(await symbols('A?B'), ['A?B']);
    assert.deepEqual(await symbols('A?*'), ['A?B']);
    assert.deepEqual(await symbols('[X]*'), ['[X]']);
    assert.deepEqual(await symbols('*1*'), ['US1100', 'US_100']);
  });

  it('ORs repeated patterns and comma-separated ones', async () => {
    assert.deepEqual(await symbols('X', 'AXB'), ['AXB', 'X']);
    assert.deepEqual(await symbols('X,AXB'), ['AXB', 'X']);
  });
});
