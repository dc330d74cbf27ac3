/**
 * The web view's pages and its guards, over HTTP: every exchange string escaped, a strict
 * Content-Security-Policy and no script, pages under the weight budget, the bearer token (and its
 * file) guarding everything but /healthz, `tierwatch serve`'s loopback default and its warning,
 * the view on the daemon's HTTP port, and `tierwatch report`'s self-contained file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../src/program.ts';
import { runCliCaptured } from './helpers/harness.ts';
import { startHttpDaemon } from './helpers/http-daemon.ts';
import { HOSTILE, serveHistory, webHistory, type WebHistory } from './helpers/web-history.ts';
import { ladderChart } from '../src/web/ladder-chart.ts';
import type { WebServer } from '../src/web/server.ts';

const ESCAPED = '&lt;img src=x onerror=alert(1)&gt;';
const TOKEN = 'tw-view-token-3f9a7c1e';

let history: WebHistory;
let server: WebServer;

before(async () => {
  history = await webHistory();
  server = await serveHistory(history.h.dbPath);
});
after(async () => {
  await server?.close();
  await history?.close();
});

async function get(base: string, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(new URL(path, base), { headers, redirect: 'manual' });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const PAGES = [
  '/',
  '/changes?include-baseline',
  '/changes?include-baseline&page=2',
  '/diff?from=run:1',
  '/runs',
  '/symbol/META-USD?compare=run:1',
  `/symbol/${encodeURIComponent(HOSTILE)}`,
];

describe('pages', () => {
  it('escape every exchange string: the hostile symbol is text everywhere', async () => {
    for (const path of [
      '/',
      '/changes?include-baseline',
      '/diff?from=run:1',
      `/symbol/${encodeURIComponent(HOSTILE)}?compare=run:1`,
      `/changes?symbol=${encodeURIComponent(HOSTILE)}&include-baseline`,
    ]) {
      const page = await get(server.url, path);
      assert.equal(page.status, 200, path);
      assert.ok(page.text.includes(ESCAPED), `${path} shows the symbol as text`);
      assert.ok(!page.text.includes('<img'), `${path} holds no <img> element`);
    }
  });

  it('carry a CSP that allows no script, hold no script and no inline style, and weigh under 300 KB with their assets', async () => {
    const css = await get(server.url, '/assets/style.css');
    const icon = await get(server.url, '/assets/icon.svg');
    for (const path of PAGES) {
      const page = await get(server.url, path);
      assert.equal(page.status, 200, path);
      const csp = page.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /style-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|script-src/);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
      assert.doesNotMatch(page.text, /<script|\sstyle="|\son[a-z]+="/i, path);
      const weight = Buffer.byteLength(page.text) + Buffer.byteLength(css.text) + Buffer.byteLength(icon.text);
      assert.ok(weight <= 300 * 1024, `${path} weighs ${weight} bytes`);
    }
  });

  it('keep their filters in the URL: the symbol box redirects to the symbol page, forms are GET', async () => {
    const jump = await get(server.url, `/symbol?symbol=${encodeURIComponent('META-USD')}`);
    assert.equal(jump.status, 303);
    assert.equal(jump.headers.get('location'), '/symbol/META-USD');
    const changes = await get(server.url, '/changes?only=tightening&symbol=META-USD');
    assert.match(changes.text, /<form class="filters" action="\/changes" method="get"/);
    assert.match(changes.text, /value="tightening"\s+checked/);
    assert.match(changes.text, /id="f-symbol" name="symbol" value="META-USD"/);
  });

  it('show a bad parameter as the CLI message with a 400, keeping the form', async () => {
    const page = await get(server.url, '/changes?since=yesterday-ish');
    assert.equal(page.status, 400);
    assert.match(page.text, /role="alert">Expected `--since`/);
    assert.match(page.text, /value="yesterday-ish"/);
    assert.ok(!page.text.includes('    at '));
  });
});

describe('token', () => {
  it('guards pages and API (Bearer or Basic), not /healthz; the file is re-read', async () => {
    const file = join(history.h.dir, 'http-token');
    writeFileSync(file, `${TOKEN}\n`);
    const guarded = await serveHistory(history.h.dbPath, { token: { from: 'file', path: file } });
    try {
      for (const path of ['/', '/api/changes', '/assets/style.css', '/symbol/META-USD']) {
        const denied = await get(guarded.url, path);
        assert.equal(denied.status, 401, path);
        assert.match(denied.headers.get('www-authenticate') ?? '', path.startsWith('/api/') ? /^Bearer/ : /^Basic/);
        assert.equal((await get(guarded.url, path, { authorization: 'Bearer wrong' })).status, 401);
        assert.equal((await get(guarded.url, path, { authorization: `Bearer ${TOKEN}` })).status, 200, path);
      }
      const basic = `Basic ${Buffer.from(`anyone:${TOKEN}`).toString('base64')}`;
      assert.equal((await get(guarded.url, '/runs', { authorization: basic })).status, 200);
      assert.equal((await get(guarded.url, '/healthz')).status, 200);
      writeFileSync(file, 'rotated-token\n');
      assert.equal((await get(guarded.url, '/', { authorization: `Bearer ${TOKEN}` })).status, 401);
      assert.equal((await get(guarded.url, '/', { authorization: 'Bearer rotated-token' })).status, 200);
    } finally {
      await guarded.close();
    }
  });
});

/** `tierwatch serve` in process until the URL line is printed; stop() aborts it and returns the exit code. */
async function startServe(args: string[], env: Record<string, string>) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const shutdown = new AbortController();
  const exit = runCli(['serve', ...args], {
    stdout,
    stderr,
    env: { LOG_LEVEL: 'silent', ...env },
    stdoutIsTTY: false,
    signal: shutdown.signal,
  });
  const deadline = Date.now() + 30_000;
  let code: number | null = null;
  void exit.then((value) => (code = value));
  while (!/http:\/\/\S+\//.test(out) && code === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url: /http:\/\/\S+\//.exec(out)?.[0] ?? null,
    out: () => out,
    err: () => err,
    stop: async () => {
      shutdown.abort();
      return exit;
    },
  };
}

describe('tierwatch serve', () => {
  it('listens on loopback by default and prints the URL; a token in the environment is never printed', async () => {
    const serve = await startServe(['--port', '0'], { TIERWATCH_DB: history.h.dbPath, TIERWATCH_HTTP_TOKEN: TOKEN });
    assert.match(serve.url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(serve.err(), '', 'no warning on loopback, no unknown-variable warning for TIERWATCH_HTTP_TOKEN');
    assert.equal((await get(serve.url!, '/')).status, 401);
    assert.equal((await get(serve.url!, '/', { authorization: `Bearer ${TOKEN}` })).status, 200);
    assert.equal(await serve.stop(), 0);
    assert.ok(!`${serve.out()}${serve.err()}`.includes(TOKEN));
  });

  it('warns when --host is not loopback', async () => {
    const serve = await startServe(['--port', '0', '--host', '0.0.0.0'], { TIERWATCH_DB: history.h.dbPath });
    assert.match(serve.err(), /warning: listening on 0\.0\.0\.0, not loopback.*set TIERWATCH_HTTP_TOKEN/);
    assert.equal(await serve.stop(), 0);
  });

  it('refuses both token settings, a missing token file (exit 2), and a port in use (HTTP_LISTEN, exit 1)', async () => {
    const both = await runCliCaptured(['serve', '--port', '0'], {
      env: {
        TIERWATCH_DB: history.h.dbPath,
        TIERWATCH_HTTP_TOKEN: 'a',
        TIERWATCH_HTTP_TOKEN_FILE: '/x',
        LOG_LEVEL: 'silent',
      },
    });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /Set either `TIERWATCH_HTTP_TOKEN` or `TIERWATCH_HTTP_TOKEN_FILE`, not both/);
    const missing = await runCliCaptured(['serve', '--port', '0'], {
      env: { TIERWATCH_DB: history.h.dbPath, TIERWATCH_HTTP_TOKEN_FILE: '/no/such/token', LOG_LEVEL: 'silent' },
    });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /`TIERWATCH_HTTP_TOKEN_FILE` names "\/no\/such\/token", which cannot be read/);
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const busy = await runCliCaptured(['serve', '--port', String(port)], {
        env: { TIERWATCH_DB: history.h.dbPath, LOG_LEVEL: 'silent' },
      });
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, new RegExp(`Cannot listen on 127\\.0\\.0\\.1 port ${port} \\(EADDRINUSE\\)`));
    } finally {
      taken.close();
    }
  });
});

describe('the daemon serves the view on TIERWATCH_HTTP_PORT', () => {
  it('at /, beside /healthz and /metrics, with the token guarding the view only', async () => {
    const daemon = await startHttpDaemon(history.h, { TIERWATCH_HTTP_TOKEN: TOKEN, LOG_LEVEL: 'info' });
    try {
      // The daemon's own verdict (the second account may not be swept yet), without a token.
      assert.match((await get(daemon.base, '/healthz')).text, /^(un)?healthy: /);
      assert.equal((await get(daemon.base, '/metrics')).status, 200);
      assert.equal((await get(daemon.base, '/')).status, 401);
      const overview = await get(daemon.base, '/', { authorization: `Bearer ${TOKEN}` });
      assert.equal(overview.status, 200);
      assert.match(overview.text, /<h1>Overview<\/h1>/);
      const api = await get(daemon.base, '/api/runs', { authorization: `Bearer ${TOKEN}` });
      assert.ok((JSON.parse(api.text) as unknown[]).length >= 1);
      assert.ok(!daemon.logs.text().includes(TOKEN), 'the token is never logged');
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
});

describe('tierwatch report', () => {
  it('writes one self-contained HTML file: the overview and the chosen ladders, inline styles, no network', async () => {
    const out = join(history.h.dir, 'report.html');
    const result = await runCliCaptured(
      ['report', '--out', out, '--symbol', 'META-USD', '--symbol', HOSTILE, '--compare', 'run:1'],
      {
        env: { TIERWATCH_DB: history.h.dbPath, LOG_LEVEL: 'silent' },
      },
    );
    assert.equal(result.code, 0, result.stderr);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /<style>/);
    assert.match(text, /<h1>tierwatch report<\/h1>/);
    assert.equal(
      (text.match(/<svg [^>]*\bclass="ladder"/g) ?? []).length,
      2,
      'the ladders of META-USD and of the hostile symbol',
    );
    assert.match(text, /class="series series-compare"/);
    assert.ok(text.includes(ESCAPED) && !text.includes('<img'));
    assert.doesNotMatch(text, /<script|<link|<iframe|\ssrc="|\shref="(https?:|\/)/);
    const missing = await runCliCaptured(['report'], { env: { TIERWATCH_DB: history.h.dbPath } });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--out/);
  });
});

describe('changes page', () => {
  it('pages through the feed in exactly the CLI order, across time slices of a long history', async () => {
    const { tempHistory, tier } = await import('./query-fixture.ts');
    const { pageOfChanges, CHANGES_PAGE_SIZE } = await import('../src/web/pages/changes.ts');
    const { changesBetween } = await import('../src/query/changes.ts');
    const { openDatabase } = await import('../src/store/db.ts');
    const { SqliteHistorySource } = await import('../src/query/source.ts');
    const fixture = tempHistory();
    try {
      // 80 sweeps over 200 days, each moving a few tiers: slices of 1, 2, 4 … 32 days all hold rows.
      const start = Date.parse('2026-01-01T00:00:00.000Z');
      for (let sweep = 0; sweep < 80; sweep++) {
        const at = new Date(start + sweep * 2.5 * 86_400_000 + (sweep % 7) * 3_600_000).toISOString();
        const tiers = ['AAA-USD', 'BBB-USD', 'CCC-USD'].flatMap((symbol, s) =>
          ['1', '5', '20'].map((leverage, l) =>
            tier(symbol, leverage, 1 / Number(leverage), 0.5 / Number(leverage), 1000 * (1 + ((sweep + s + l) % 4))),
          ),
        );
        fixture.sweep(sweep % 3 === 0 ? 'sub1' : 'primary', at, tiers);
      }
      const db = openDatabase(fixture.dbPath, { readonly: true });
      try {
        const view = {
          history: new SqliteHistorySource(db),
          now: new Date(),
          source: fixture.dbPath,
          healthMaxAgeMs: 1,
          accounts: null,
          standalone: false,
        };
        for (const options of [
          {},
          { includeBaseline: true },
          { since: '2026-02-03T05:00:00.000Z', until: '2026-06-01' },
          { symbol: ['BBB-USD'], account: ['primary'] },
        ]) {
          const expected = [
            ...changesBetween(
              db,
              {
                since: (options as { since?: string }).since ?? null,
                until: (options as { until?: string }).until ?? null,
              },
              { ...((options as { symbol?: string[] }).symbol ? { symbols: ['BBB-USD'], accounts: ['primary'] } : {}) },
              { includeBaseline: (options as { includeBaseline?: boolean }).includeBaseline === true },
            ),
          ];
          assert.ok(expected.length > CHANGES_PAGE_SIZE || 'symbol' in options, `${expected.length} rows`);
          const paged = [];
          for (let page = 1; ; page++) {
            const { rows, more } = await pageOfChanges(view, options, page);
            paged.push(...rows);
            if (!more) break;
          }
          assert.deepEqual(paged, expected, JSON.stringify(options));
        }
        // The overview's latest changes, read backwards in slices, are the tail of the same feed.
        const { latestChanges } = await import('../src/web/pages/overview.ts');
        const since = '2026-03-01T00:00:00.000Z';
        const all = [...changesBetween(db, { since }, {}, {})];
        assert.deepEqual(await latestChanges(view, since, Date.parse('2026-12-31T00:00:00.000Z')), all.slice(-20));
      } finally {
        db.close();
      }
    } finally {
      fixture.close();
    }
  });
});

describe('ladder chart', () => {
  it('keeps an exchange string text wherever Plot puts it: labels, tooltips, attributes, title', async () => {
    // A leverage is a string from the exchange too; this one holds every character markup needs.
    const leverage = `${HOSTILE}"'&amp;`;
    const steps = [
      { leverage: '20', initial_margin: 0.05, maintenance_margin: 0.03, max_notional: 50_000 },
      { leverage, initial_margin: 0.1, maintenance_margin: 0.06, max_notional: 100_000 },
    ];
    const chart = (await ladderChart([{ role: 'at', label: `at ${HOSTILE}`, steps }], HOSTILE, 'x')).text;
    assert.ok(!chart.includes('<img'), chart);
    assert.doesNotMatch(chart, /<script|<style|\sstyle="|\son[a-z]+="/i);
    const escaped = `${ESCAPED}&quot;'&amp;amp;`;
    // In the leverage label, the tooltips and the step's data-leverage attribute, escaped the same way.
    assert.equal(chart.split(`data-leverage="${escaped}"`).length - 1, 2, 'initial and maintenance steps');
    assert.ok(chart.includes(`>${ESCAPED}"'&amp;amp;×</text>`), 'the leverage label');
    assert.ok(chart.includes(`<title>${ESCAPED}"'&amp;amp;×: initial margin 10% up to 100k</title>`));
    assert.ok(chart.includes(`<title id="x-title">${ESCAPED}</title>`));
    assert.equal((chart.match(/class="step initial"/g) ?? []).length, 2, 'one step per leverage');
  });
});
