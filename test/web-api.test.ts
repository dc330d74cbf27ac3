/**
 * The web API answers exactly as the CLI's `--format json` for the same question on the same
 * database (a property over random filters, byte for byte), refuses bad parameters with a 400 and
 * the CLI's own message, and never writes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { runCliCaptured } from './helpers/harness.ts';
import { HOSTILE, serveHistory, webHistory, type WebHistory } from './helpers/web-history.ts';
import type { WebServer } from '../src/web/server.ts';

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

type Endpoint = 'changes' | 'snapshot' | 'diff' | 'history' | 'runs';

interface Question {
  endpoint: Endpoint;
  /** Flag name (without --) → values, in the CLI's spelling; repeatable flags have several. */
  flags: Array<[string, string | true]>;
  /** The history endpoint's symbol, diff's FROM and TO. */
  positional: string[];
}

/** The CLI's argv and the API's URL for one question. */
function both(question: Question): { argv: string[]; path: string } {
  const argv = [question.endpoint, ...question.positional];
  const search = new URLSearchParams();
  for (const [flag, value] of question.flags) {
    argv.push(`--${flag}`);
    if (value !== true) argv.push(value);
    search.append(flag, value === true ? '' : value);
  }
  let path = `/api/${question.endpoint}`;
  if (question.endpoint === 'history') path += `/${encodeURIComponent(question.positional[0]!)}`;
  if (question.endpoint === 'diff') {
    search.set('from', question.positional[0]!);
    if (question.positional[1] !== undefined) search.set('to', question.positional[1]);
  }
  const query = search.toString();
  return { argv: [...argv, '--format', 'json'], path: query === '' ? path : `${path}?${query}` };
}

async function cli(argv: string[]) {
  return runCliCaptured(argv, { env: { TIERWATCH_DB: history.h.dbPath, LOG_LEVEL: 'silent' } });
}

async function get(path: string, headers: Record<string, string> = {}) {
  const response = await fetch(new URL(path, server.url), { headers });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Whether the question reads the clock: `now`, a relative age, or a time left to its default (now). */
function relative(question: Question): boolean {
  const flags = new Set(question.flags.map(([flag]) => flag));
  const defaultsToNow =
    (question.endpoint === 'diff' && question.positional.length === 1) ||
    (question.endpoint === 'snapshot' && !flags.has('at')) ||
    (question.endpoint === 'changes' && !flags.has('until'));
  return (
    defaultsToNow ||
    [...question.positional, ...question.flags.map(([, value]) => value)].some(
      (value) => value === 'now' || value === '2d',
    )
  );
}

/** Asserts the API gives what the CLI gives: the same bytes, or the same error message. */
async function assertSame(question: Question): Promise<void> {
  const { argv, path } = both(question);
  const [expected, actual] = [await cli(argv), await get(path)];
  if (expected.code === 0) {
    assert.equal(actual.status, 200, `${path}: ${actual.text}`);
    assert.equal(actual.text, expected.stdout, `${path} vs tierwatch ${argv.join(' ')}`);
  } else {
    assert.ok(
      actual.status === 400 || actual.status === 404,
      `${path} → ${actual.status} (the CLI exited ${expected.code}: ${expected.stderr})`,
    );
    const body = JSON.parse(actual.text) as { error: { code: string; message: string } };
    // `now` and relative ages are read a few ms apart by the CLI and the server: only those instants may differ.
    const instants = (text: string) =>
      relative(question) ? text.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<instant>') : text;
    assert.equal(instants(`tierwatch ${question.endpoint}: ${body.error.message}\n`), instants(expected.stderr), path);
    assert.ok(!actual.text.includes('    at '), 'no stack trace');
  }
}

describe('web API = CLI --format json', () => {
  it('for random questions (property)', async () => {
    const runIds = history.rounds.flat();
    const time = fc.constantFrom(
      ...runIds.map((id) => `run:${id}`),
      `run:${history.failedRun}`,
      'now',
      '2d',
      '2020-01-01',
      'yesterday-ish',
      '3000-01-01T00:00:00Z',
    );
    const accounts = fc.subarray(['primary', 'sub1', 'sub*', 'nobody']);
    const symbols = fc.subarray(['META-USD', '*-USD', HOSTILE, 'meta-usd', 'A*']);
    const list = (flag: string, values: string[]): Array<[string, string]> => values.map((value) => [flag, value]);
    const optional = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
    const question: fc.Arbitrary<Question> = fc.oneof(
      fc
        .record({
          since: optional(time),
          until: optional(time),
          account: accounts,
          symbol: symbols,
          only: fc.subarray(['tightening', 'loosening', 'mixed', 'sideways'], { maxLength: 2 }),
          change: fc.subarray(['added', 'removed', 'changed'], { maxLength: 2 }),
          baseline: fc.boolean(),
        })
        .map(({ since, until, account, symbol, only, change, baseline }): Question => ({
          endpoint: 'changes',
          positional: [],
          flags: [
            ...(since === undefined ? [] : [['since', since] as [string, string]]),
            ...(until === undefined ? [] : [['until', until] as [string, string]]),
            ...list('account', account),
            ...list('symbol', symbol),
            ...list('only', only),
            ...list('change', change),
            ...(baseline ? [['include-baseline', true] as [string, true]] : []),
          ],
        })),
      fc
        .record({ at: optional(time), account: accounts, symbol: symbols })
        .map(({ at, account, symbol }): Question => ({
          endpoint: 'snapshot',
          positional: [],
          flags: [
            ...(at === undefined ? [] : [['at', at] as [string, string]]),
            ...list('account', account),
            ...list('symbol', symbol),
          ],
        })),
      fc
        .record({ from: time, to: optional(time), account: accounts, symbol: symbols })
        .map(({ from, to, account, symbol }): Question => ({
          endpoint: 'diff',
          positional: to === undefined ? [from] : [from, to],
          flags: [...list('account', account), ...list('symbol', symbol)],
        })),
      fc
        .record({
          symbol: fc.constantFrom('META-USD', HOSTILE, '*-USD', 'NOPE-USD', 'meta-usd', 'A/B'),
          account: accounts,
        })
        .map(({ symbol, account }): Question => ({
          endpoint: 'history',
          positional: [symbol],
          flags: list('account', account),
        })),
      fc
        .record({ failed: fc.boolean(), last: optional(fc.constantFrom('1', '3', '100', '0', 'x')), account: accounts })
        .map(({ failed, last, account }): Question => ({
          endpoint: 'runs',
          positional: [],
          flags: [
            ...(failed ? [['failed', true] as [string, true]] : []),
            ...(last === undefined ? [] : [['last', last] as [string, string]]),
            ...list('account', account),
          ],
        })),
    );
    await fc.assert(fc.asyncProperty(question, assertSame), { numRuns: 120 });
  });

  it('gives the CLI NDJSON and CSV as well', async () => {
    for (const format of ['ndjson', 'csv']) {
      const expected = await cli(['changes', '--include-baseline', '--format', format]);
      const actual = await get(`/api/changes?include-baseline&format=${format}`);
      assert.equal(actual.status, 200);
      assert.equal(actual.text, expected.stdout);
    }
  });
});

describe('web API: bad parameters', () => {
  it('answers 400 with the CLI message and a code, never a stack', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/api/changes?since=yesterday-ish', /`--since`/],
      ['/api/changes?only=sideways', /Expected `--only` to be one of tightening, loosening, mixed, got "sideways"/],
      ['/api/runs?last=0', /Expected `--last` to be an integer from 1 to 999999999, got "0"/],
      ['/api/changes?bogus=1', /Unknown query parameter "bogus"/],
      ['/api/changes?include-baseline=maybe', /`include-baseline` to be true or false/],
      ['/api/snapshot?format=table', /Expected `format` to be one of json, ndjson, csv/],
      ['/api/diff', /missing required argument 'from'/],
      ['/api/history/', /missing required argument 'symbol'/],
    ];
    for (const [path, message] of cases) {
      const answer = await get(path);
      assert.equal(answer.status, 400, path);
      assert.match(answer.headers.get('content-type') ?? '', /application\/json/);
      const body = JSON.parse(answer.text) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'USAGE', path);
      assert.match(body.error.message, message, path);
      assert.ok(!answer.text.includes('    at '), path);
    }
  });

  it('answers 404 with DB_EMPTY before the history begins, as the CLI exits 1', async () => {
    const answer = await get('/api/snapshot?at=2020-01-01');
    assert.equal(answer.status, 404);
    assert.equal((JSON.parse(answer.text) as { error: { code: string } }).error.code, 'DB_EMPTY');
  });

  it('404 for an unknown API or page, 400 for a broken percent-encoding', async () => {
    assert.equal((await get('/api/nothing')).status, 404);
    assert.equal((await get('/no/such/page')).status, 404);
    assert.equal((await get('/symbol/%E0%A4%A')).status, 400);
  });
});

describe('web view: read-only', () => {
  it('answers only GET and HEAD, and leaves the database file as it was', async () => {
    const fingerprint = () =>
      ['', '-wal'].map((suffix) => {
        const file = `${history.h.dbPath}${suffix}`;
        return existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : 'absent';
      });
    const before = fingerprint();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const response = await fetch(new URL('/api/changes', server.url), {
        method,
        body: method === 'DELETE' ? null : '{}',
      });
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get('allow'), 'GET, HEAD');
    }
    for (const path of [
      '/',
      '/changes',
      '/diff?from=run:1',
      '/runs',
      '/symbol/META-USD',
      '/api/changes',
      '/api/snapshot',
      '/api/runs',
      '/api/history/META-USD',
      '/api/diff?from=run:1',
    ]) {
      assert.equal((await get(path)).status, 200, path);
    }
    const head = await fetch(new URL('/changes', server.url), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    assert.deepEqual(fingerprint(), before);
  });
});
