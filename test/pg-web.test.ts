/**
 * The web view on a Postgres history (issue 15) answers as on SQLite: random sweep scripts stored in
 * both (test/helpers/twin-history.ts), then random questions to the JSON API of a view over each —
 * the same status, content type and body, byte for byte (errors included). The pages and
 * `tierwatch report` are the same bytes too, once the one thing that differs by design (the name of
 * the database in the footer) is set aside; `tierwatch serve` and the daemons (leader and standby)
 * serve the view from Postgres.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { PostgresUrl } from '../src/config-database.ts';
import { createLogger } from '../src/log.ts';
import { runCli } from '../src/program.ts';
import { historyOpener, sqliteOpener } from '../src/query/source-opener.ts';
import { openDatabase } from '../src/store/db.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { startWebServer, type WebServer } from '../src/web/server.ts';
import { runCliCaptured, startHarness } from './helpers/harness.ts';
import { waitForLogLine } from './helpers/http-daemon.ts';
import { logMessage, startLeaderAndStandby } from './helpers/pg-daemon.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';
import { storeTwice, twinStep, TWIN_T0, type TwinRun, type TwinStep } from './helpers/twin-history.ts';
import { HOSTILE } from './helpers/web-history.ts';

after(stopPgServer);

/** Both views are rendered at this instant: "how long ago" and the health verdict are the same. */
const NOW = new Date(Date.UTC(2026, 1, 1));
const TRUNCATE =
  'TRUNCATE run_ledger, tier_version, meta, alert_outbox, alert_state, leader_lease RESTART IDENTITY CASCADE';

async function serve(history: Awaited<ReturnType<typeof historyOpener>>): Promise<WebServer> {
  return startWebServer({
    history,
    token: null,
    healthMaxAgeMs: 3_600_000,
    accounts: null,
    logger: createLogger({ level: 'silent' }),
    host: '127.0.0.1',
    port: 0,
    now: () => NOW,
  });
}

async function get(server: WebServer, target: string): Promise<{ status: number; type: string; text: string }> {
  const response = await fetch(new URL(target, server.url));
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

/**
 * A run's leader_epoch: the epoch of the lease it was written under on Postgres, always null on
 * SQLite (one writer, no lease). The one column that differs by design.
 */
function withoutEpochs(text: string): string {
  return text.replaceAll(/"leader_epoch":\d+/g, '"leader_epoch":null');
}

/** A point in time for a question, chosen against the script once it is known. */
type TimePick = { kind: 'run'; index: number; offsetMs: number } | { kind: 'runId'; index: number } | { kind: 'far' };

const timePick: fc.Arbitrary<TimePick> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('run' as const),
      index: fc.nat(),
      offsetMs: fc.constantFrom(-1, 0, 1, 90_000),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('runId' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'far' as const }) },
);

function timeText(pick: TimePick, runs: readonly TwinRun[]): string {
  if (pick.kind === 'far') return new Date(TWIN_T0 - 86_400_000).toISOString();
  if (pick.kind === 'runId') return `run:${(pick.index % (runs.length + 1)) + 1}`;
  const observed = runs.filter((run) => run.observedAt !== null);
  if (observed.length === 0) return new Date(TWIN_T0).toISOString();
  return new Date(observed[pick.index % observed.length]!.observedAt! + pick.offsetMs).toISOString();
}

interface Question {
  endpoint: 'changes' | 'snapshot' | 'diff' | 'history' | 'runs';
  times: [TimePick, TimePick];
  symbols: string[];
  accounts: string[];
  flags: string[];
  format: string;
}

const question: fc.Arbitrary<Question> = fc.record({
  endpoint: fc.constantFrom(
    'changes' as const,
    'snapshot' as const,
    'diff' as const,
    'history' as const,
    'runs' as const,
  ),
  times: fc.tuple(timePick, timePick),
  symbols: fc.subarray(['META-USD', 'meta-*', '*_USD', 'NOPE', 'B?C-USD'], { maxLength: 2 }),
  accounts: fc.subarray(['primary', 'sub-*', 'nobody'], { maxLength: 1 }),
  flags: fc.subarray(['include-baseline', 'only=tightening', 'change=removed', 'since', 'until', 'failed', 'last']),
  format: fc.constantFrom('json', 'json', 'ndjson', 'csv'),
});

/** The format a question is asked in: runs in JSON and NDJSON only (leader_epoch is set aside by name). */
function formatOf(q: Question): string {
  return q.endpoint === 'runs' && q.format === 'csv' ? 'json' : q.format;
}

/** The API path of a question; every time is explicit, so both views get the same instants. */
function pathOf(q: Question, runs: readonly TwinRun[]): string {
  const [first, second] = q.times.map((pick) => timeText(pick, runs)) as [string, string];
  const search = new URLSearchParams();
  for (const account of q.accounts) search.append('account', account);
  if (formatOf(q) !== 'json') search.set('format', formatOf(q));
  if (q.endpoint === 'history') {
    return `/api/history/${encodeURIComponent(q.symbols[0] ?? 'META*')}?${search.toString()}`;
  }
  if (q.endpoint === 'runs') {
    if (q.flags.includes('failed')) search.set('failed', '');
    if (q.flags.includes('last')) search.set('last', '3');
    return `/api/runs?${search.toString()}`;
  }
  for (const symbol of q.symbols) search.append('symbol', symbol);
  if (q.endpoint === 'snapshot') search.set('at', first);
  if (q.endpoint === 'diff') {
    search.set('from', first);
    search.set('to', second);
  }
  if (q.endpoint === 'changes') {
    for (const flag of q.flags) {
      if (flag === 'since') search.set('since', first);
      else if (flag === 'until') search.set('until', second);
      else if (flag === 'include-baseline') search.set('include-baseline', '');
      else if (flag.includes('=')) search.append(...(flag.split('=') as [string, string]));
    }
  }
  return `/api/${q.endpoint}?${search.toString()}`;
}

test(
  'random sweep scripts in SQLite and in Postgres: the web API answers byte for byte the same',
  { timeout: 180_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgweb-'));
    const url = await server.createDatabase('webprop');
    await migratePostgres(url);
    const pool = createPgPool(url);
    // One view over Postgres for every case: it holds no session between requests, or the TRUNCATE
    // below would wait for it forever.
    const fromPostgres = await serve(
      await historyOpener({ kind: 'postgres', url: new PostgresUrl(url, 'TIERWATCH_DB') }),
    );
    let caseNumber = 0;
    let answered = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(twinStep, { minLength: 1, maxLength: 10 }),
          fc.array(question, { minLength: 4, maxLength: 10 }),
          async (steps, questions) => {
            caseNumber += 1;
            await pool.query(TRUNCATE);
            const dbPath = path.join(dir, `case-${caseNumber}.db`);
            const db = openDatabase(dbPath);
            let runs: TwinRun[];
            try {
              runs = await storeTwice(db, pool, steps);
            } finally {
              db.close();
            }
            const fromSqlite = await serve(sqliteOpener(dbPath));
            try {
              for (const q of questions) {
                const target = pathOf(q, runs);
                const expected = await get(fromSqlite, target);
                const actual = await get(fromPostgres, target);
                assert.deepEqual({ ...actual, text: withoutEpochs(actual.text) }, expected, target);
                if (expected.status === 200 && expected.text.length > 3) answered += 1;
              }
            } finally {
              await fromSqlite.close();
            }
          },
        ),
        { numRuns: 15 },
      );
      assert.ok(answered > 25, `${answered} answers compared`);
    } finally {
      await fromPostgres.close();
      await pool.end();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

/** A fixed script: two accounts, the hostile symbol, a tightening, a removal and a failed run. */
function fixedScript(): TwinStep[] {
  const entry = (symbol: string, leverage: string, notional: number) => ({
    symbol,
    leverage,
    im: 0.1,
    mm: 0.0125,
    notional,
  });
  const base = [entry('META-USD', '1', 1e6), entry('META-USD', '20', 150_000), entry(HOSTILE, '2.5', 1e6)];
  return [
    { account: 'primary', advanceMs: 1000, fail: false, entries: base },
    { account: 'sub-1', advanceMs: 1000, fail: false, entries: [entry('BTC-USD', '1', 1e6)] },
    {
      account: 'primary',
      advanceMs: 600_000,
      fail: false,
      entries: [...base.slice(0, 1), entry(HOSTILE, '2.5', 150_000)],
    },
    { account: 'primary', advanceMs: 600_000, fail: true, entries: base },
    { account: 'sub-1', advanceMs: 600_000, fail: false, entries: [entry('BTC-USD', '1', 12_345.678)] },
  ];
}

test(
  'pages and `tierwatch report` on Postgres are the SQLite bytes; `tierwatch serve` serves them',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pgweb-pages-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const url = await server.createDatabase('webpages');
    await migratePostgres(url);
    const pool = createPgPool(url);
    const dbPath = path.join(dir, 'history.db');
    const db = openDatabase(dbPath);
    try {
      await storeTwice(db, pool, fixedScript());
    } finally {
      db.close();
      await pool.end();
    }
    const pgUrl = new PostgresUrl(url, 'TIERWATCH_DB');
    const fromSqlite = await serve(sqliteOpener(dbPath));
    t.after(() => fromSqlite.close());
    const fromPostgres = await serve(await historyOpener({ kind: 'postgres', url: pgUrl }));
    t.after(() => fromPostgres.close());
    // The footer names the database: the one difference by design.
    const fromPg = (text: string) => text.replaceAll(pgUrl.display, '<db>');
    const fromLite = (text: string) => text.replaceAll(dbPath, '<db>');
    const hostile = encodeURIComponent(HOSTILE);
    for (const page of [
      '/',
      `/symbol/${hostile}`,
      `/symbol/${hostile}?at=run:1&compare=run:3`,
      '/symbol/META-USD',
      '/changes',
      '/changes?include-baseline&symbol=meta-usd',
      '/diff?from=run:1&to=run:5',
      '/diff?from=2020-01-01',
      '/runs?failed',
      '/runs?last=0',
      '/no/such/page',
    ]) {
      const expected = await get(fromSqlite, page);
      const actual = await get(fromPostgres, page);
      assert.equal(actual.status, expected.status, page);
      assert.equal(fromPg(actual.text), fromLite(expected.text), page);
      if (!['/diff?from=2020-01-01', '/runs?last=0', '/no/such/page'].includes(page)) {
        assert.equal(actual.status, 200, page);
      }
      assert.ok(!actual.text.includes('<img src=x'), `${page}: the hostile symbol is escaped`);
    }
    assert.match((await get(fromPostgres, `/symbol/${hostile}`)).text, /&lt;img src=x onerror=alert\(1\)&gt;/);

    // `tierwatch report`: its own clock, so "generated at" and "how long ago" are set aside as well.
    const report = async (db: string, out: string) => {
      const run = await runCliCaptured(['report', '--out', out, '--symbol', 'META*', '--symbol', HOSTILE], {
        env: { TIERWATCH_DB: db, LOG_LEVEL: 'silent' },
      });
      assert.equal(run.code, 0, run.stderr);
      return fs
        .readFileSync(out, 'utf8')
        .replace(/Generated \d{4}-\d\d-\d\dT[\d:.]+Z\./, 'Generated <now>.')
        .replaceAll(/\d+ (s|min|h|d) ago/g, '<ago>');
    };
    const liteReport = fromLite(await report(dbPath, path.join(dir, 'sqlite.html')));
    const pgReport = fromPg(await report(url, path.join(dir, 'postgres.html')));
    assert.equal(pgReport, liteReport);
    assert.ok(pgReport.includes('&lt;img src=x'));

    // `tierwatch serve` itself, as a user starts it.
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const shutdown = new AbortController();
    const exit = runCli(['serve', '--port', '0'], {
      stdout,
      stderr: new PassThrough().resume(),
      env: { TIERWATCH_DB: url, LOG_LEVEL: 'silent' },
      stdoutIsTTY: false,
      signal: shutdown.signal,
    });
    t.after(() => shutdown.abort());
    const deadline = Date.now() + 30_000;
    while (!/http:\/\/\S+\//.test(out) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const served = /http:\/\/\S+\//.exec(out)?.[0];
    assert.ok(served, out);
    assert.ok(out.includes(`the read-only view of ${pgUrl.display} is at`), out);
    const overview = await fetch(served);
    assert.equal(overview.status, 200);
    assert.equal(
      withoutEpochs(await (await fetch(new URL('/api/runs', served))).text()),
      (await get(fromSqlite, '/api/runs')).text,
      'the same runs as the SQLite view',
    );
    shutdown.abort();
    assert.equal(await exit, 0);
  },
);

test(
  'a leader and a standby on Postgres both serve the view at /, behind the token',
  { timeout: 120_000 },
  async (t) => {
    const server = await postgresOrSkip(t);
    if (server === null) return;
    const url = await server.createDatabase('webdaemon');
    const h = await startHarness();
    t.after(() => h.close());
    const TOKEN = 'pg-web-token-0123456789';
    const env = {
      TIERWATCH_DB: url,
      TIERWATCH_SCHEDULE: '*/2 * * * * *',
      TIERWATCH_LEASE_TTL: '30s',
      TIERWATCH_LEASE_RENEW: '2s',
      TIERWATCH_LEASE_POLL: '500ms',
      TIERWATCH_HTTP_PORT: '0',
      TIERWATCH_HTTP_HOST: '127.0.0.1',
      TIERWATCH_HTTP_TOKEN: TOKEN,
    };
    const message = logMessage;
    // One after the other: the first leads, the second finds it leading.
    const { leader, standby } = await startLeaderAndStandby(t, h, env);
    const daemons = [leader, standby];
    for (const daemon of daemons) {
      const listening = await waitForLogLine(daemon.logs, message(/^serving \/healthz and \/metrics$/));
      assert.equal(listening.web_view, true);
      const base = `http://127.0.0.1:${Number(listening.port)}`;
      assert.equal((await fetch(`${base}/`)).status, 401, 'the token guards the view');
      assert.equal((await fetch(`${base}/healthz`)).status, 200, 'not /healthz');
      const overview = await fetch(`${base}/`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(overview.status, 200);
      assert.match(await overview.text(), /healthy/);
      const runs = await fetch(`${base}/api/runs`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const rows = (await runs.json()) as Array<{ status: string }>;
      assert.ok(
        rows.some((row) => row.status === 'ok'),
        'the leader’s sweeps, seen from either daemon',
      );
      assert.ok(!daemon.logs.text().includes('not served'), 'no warning that the view is missing');
    }
    for (const daemon of daemons) assert.equal(await daemon.stop(), 0);
  },
);
