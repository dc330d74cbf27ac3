/**
 * Logs a shipper can read (issue 13): whenever stderr is not a terminal every line is one JSON
 * object — start, sweeps, a failure, the signal, a start-up failure — with snake_case fields as in
 * the database; an expected network failure is a warning with its code and no stack. On a terminal,
 * one human line per event in UTC, escaped, coloured only without NO_COLOR.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createContext } from '../src/commands/context.ts';
import { createLogger, prettyLine } from '../src/log.ts';
import { startHarness } from './helpers/harness.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

/** Every key of a log line, nested ones included, is snake_case. */
function camelKeys(value: unknown, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, inner]) => [
    ...(/^[a-z0-9_]+$/.test(key) || Array.isArray(value) ? [] : [`${path}${key}`]),
    ...camelKeys(inner, `${path}${key}.`),
  ]);
}

function parseLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        assert.fail(`a line of stderr is not JSON: ${JSON.stringify(line)}`);
      }
    });
}

test('a log shipper reading the daemon’s stderr sees only JSON: start, sweeps, a refused connection, SIGTERM', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    const env = {
      ...process.env,
      ...h.env,
      TIERWATCH_SCHEDULE: '* * * * * *',
      TIERWATCH_SWEEP_RETRIES: '0',
      LOG_LEVEL: 'info',
    };
    const daemon = spawn(process.execPath, [CLI, 'run'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    daemon.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = once(daemon, 'exit');
    while (!stderr.includes('"msg":"sweep ok')) await once(daemon.stderr, 'data');
    await h.sim.close(); // the next firing finds the port closed: ECONNREFUSED
    while (!stderr.includes('"msg":"sweep failed')) await once(daemon.stderr, 'data');
    daemon.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, stderr);

    const lines = parseLines(stderr);
    for (const line of lines) {
      assert.deepEqual(camelKeys(line), [], `camelCase field in ${JSON.stringify(line)}`);
      assert.equal(typeof line.level, 'string');
      assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    const msgs = lines.map((line) => String(line.msg));
    assert.ok(msgs.includes('tierwatch daemon starting'));
    const ok = lines.find((line) => String(line.msg).startsWith('sweep ok'))!;
    assert.equal(ok.account_id, 'primary');
    assert.equal(typeof ok.run_id, 'number');
    assert.match(String(ok.observed_at), /Z$/);
    const failed = lines.find((line) => String(line.msg).startsWith('sweep failed'))!;
    assert.equal(failed.level, 'warn', 'a refused connection is expected: a warning');
    assert.equal(failed.code, 'QFEX_CONNECT');
    assert.equal(failed.err, undefined, 'no stack for an expected failure');
    assert.ok(!stderr.includes('    at '), 'no stack anywhere at info');
    const signal = lines.find((line) => line.signal === 'SIGTERM');
    assert.ok(signal, 'the signal is a JSON line');
    assert.match(String(signal.msg), /SIGTERM received, stopping/);
    for (const line of lines) {
      assert.ok(!('accountId' in line) && !('account' in line) && !('runId' in line), JSON.stringify(line));
    }
  } finally {
    await h.close();
  }
});

test('a daemon that cannot start says why in one JSON line when stderr is not a terminal', async () => {
  const child = spawn(process.execPath, [CLI, 'run'], {
    env: {
      ...process.env,
      QFEX_PUBLIC_KEY: 'p',
      QFEX_SECRET_KEY: 's',
      TIERWATCH_PAGE_SIZE: '0',
      TIERWATCH_DB: '/nonexistent/x.db',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 2);
  const lines = parseLines(stderr);
  assert.equal(lines.length, 1, stderr);
  assert.equal(lines[0]!.code, 'CONFIG_INVALID');
  assert.equal(lines[0]!.level, 'fatal');
  assert.match(String(lines[0]!.msg), /TIERWATCH_PAGE_SIZE/);
});

const HOSTILE = 'EVIL\u001b[2J\u001b]0;pwned\u0007\r\u202e\u009b31m-USD';

test('on a terminal: one line per event, UTC, control characters escaped, no colour under NO_COLOR', async () => {
  const capture = (env: Record<string, string>) => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    const context = createContext(
      {
        stdout: new PassThrough(),
        stderr: new PassThrough(),
        env,
        stdoutIsTTY: true,
        stderrIsTTY: true,
        signal: new AbortController().signal,
        logDestination: out,
      },
      {},
      [],
    );
    const logger = context.logger();
    logger.warn({ symbol: HOSTILE, run_id: 3, err: new Error('boom') }, `sweep failed: ${HOSTILE}`);
    logger.info('second event');
    return () => text;
  };
  const plain = capture({ NO_COLOR: '1' })();
  const lines = plain.split('\n').filter(Boolean);
  assert.equal(lines.length, 2, plain);
  assert.match(
    lines[0]!,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN {2}sweep failed: EVIL\\x1B\[2J\\x1B\]0;pwned\\x07\\r\\u202E\\x9B31m-USD /,
  );
  assert.match(lines[0]!, / run_id=3 /);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(plain, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/, 'nothing raw, no colour');
  const coloured = capture({})();
  // eslint-disable-next-line no-control-regex -- the ESC of a colour sequence is what is looked for
  assert.match(coloured, /\u001b\[33mWARN/);
  // The stack of an error stays on its line, escaped.
  assert.match(lines[0]!, /Error: boom\\n +at /);
  assert.equal(prettyLine('not json\u001b[2J', false), 'not json\\x1B[2J\n');
  // A logger given no destination on a pipe writes JSON; pretty is asked for explicitly.
  const sink = new PassThrough();
  let json = '';
  sink.on('data', (chunk: Buffer) => (json += chunk.toString('utf8')));
  createLogger({ destination: sink }).info({ symbol: HOSTILE }, 'x');
  assert.equal((JSON.parse(json) as { symbol: string }).symbol, HOSTILE);
});
