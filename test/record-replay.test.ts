/**
 * Record and replay (issue 10): `tierwatch check --record FILE` against the simulator writes a
 * transcript; `tierwatch simulate --replay FILE` serves it; `tierwatch collect` against the replay
 * stores exactly the history that a `collect` against the live simulator stored. Also: a request the
 * transcript does not hold fails clearly, the transcript shipped in test/fixtures (built from the
 * protocol documentation's own example frames) replays into the documented tiers, and bad
 * `--replay`/`--record` arguments are usage errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/program.ts';
import { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, defaultUniverse, syntheticUniverse } from '../src/sim/index.ts';
import { openDatabase } from '../src/store/db.ts';
import { runCliCaptured, startHarness, type Harness } from './helpers/harness.ts';

const SUBACCOUNT = '11111111-1111-1111-1111-111111111111';
const DOCS_TRANSCRIPT = fileURLToPath(new URL('./fixtures/transcripts/qfex-docs-example.jsonl', import.meta.url));

let h: Harness;

before(async () => {
  h = await startHarness({
    keys: [{ publicKey: DEMO_PUBLIC_KEY, secretKey: DEMO_SECRET_KEY, accounts: ['primary', SUBACCOUNT] }],
    universe: { primary: defaultUniverse(), [SUBACCOUNT]: syntheticUniverse(23, 7) },
  });
  h.db.close();
});

after(async () => {
  await h?.close();
});

interface Replay {
  url: string;
  stdout(): string;
  logs(): string;
  stop(): Promise<number>;
}

/** `tierwatch simulate --replay FILE --port 0`, in process, until stop(); resolves once it prints its URL. */
async function startReplay(file: string, extra: string[] = []): Promise<Replay> {
  const stdout = new PassThrough();
  const logs = new PassThrough();
  let out = '';
  let logText = '';
  logs.on('data', (chunk: Buffer) => (logText += chunk.toString('utf8')));
  const controller = new AbortController();
  const listening = new Promise<string>((resolve) => {
    stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const match = /listening on (ws:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
  });
  const exited = runCli(['simulate', '--replay', file, '--port', '0', ...extra], {
    stdout,
    stderr: new PassThrough(),
    env: { LOG_LEVEL: 'debug' },
    stdoutIsTTY: false,
    signal: controller.signal,
    logDestination: logs,
  });
  const url = await Promise.race([
    listening,
    exited.then((code) => Promise.reject(new Error(`simulate --replay exited with ${code}: ${out}`))),
  ]);
  return {
    url,
    stdout: () => out,
    logs: () => logText,
    stop: () => {
      controller.abort();
      return exited;
    },
  };
}

/** The stored history without what differs between two collects of the same data: run ids and instants. */
function storedHistory(dbPath: string): { versions: unknown[]; changes: unknown[]; runs: unknown[] } {
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const strip = (rows: unknown[]) =>
      rows.map((row) =>
        Object.fromEntries(
          Object.entries(row as Record<string, unknown>).filter(
            ([key]) => !/(_at|_from|_to|run_id|endpoint)$/.test(key),
          ),
        ),
      );
    return {
      versions: strip(
        db.sqlite.prepare('SELECT * FROM tier_versions ORDER BY account_id, symbol, leverage, valid_from').all(),
      ),
      changes: strip(
        db.sqlite.prepare('SELECT * FROM tier_changes ORDER BY account_id, symbol, leverage, run_id').all(),
      ),
      runs: strip(
        db.sqlite.prepare('SELECT account_id, status, tiers, changes, error_code FROM runs ORDER BY run_id').all(),
      ),
    };
  } finally {
    db.close();
  }
}

function env(extra: Record<string, string>): Record<string, string> {
  return { ...h.env, QFEX_ACCOUNT_IDS: `primary,${SUBACCOUNT}`, TIERWATCH_PAGE_SIZE: '7', ...extra };
}

test('check --record, then collect against simulate --replay, stores what collect against the live simulator stored', async () => {
  const transcript = join(h.dir, 'session.jsonl');
  // A RateLimited answer on the way: the transcript then holds a page asked twice with two answers.
  h.sim.inject({ kind: 'error_reply', page: 2, code: 'RateLimited', retryAfterMs: 1 });
  const recorded = await runCliCaptured(['check', '--record', transcript], { env: env({}) });
  assert.equal(recorded.code, 0, recorded.stdout + recorded.logs.text());
  assert.match(recorded.stdout, /ok {2}primary: .* read \d+ valid tier\(s\) across \d+ symbol\(s\) in \d+ page\(s\)/);
  assert.match(recorded.stdout, new RegExp(`ok {2}${SUBACCOUNT}: .* read 23 valid tier`));
  assert.match(recorded.stdout, /transcript: .*session\.jsonl \(\d+ frame\(s\), credentials removed\)/);

  const lines = readFileSync(transcript, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(lines[0]!.transcript, 'tierwatch');
  const frames = lines.slice(1);
  assert.deepEqual([...new Set(frames.map((frame) => frame.session))], [1, 2], 'one session per account');
  assert.ok(
    frames.every((frame) => typeof frame.at === 'string' && (frame.dir === 'sent' || frame.dir === 'received')),
  );
  assert.ok(
    frames.some((frame) => frame.dir === 'received' && String(frame.text).includes('RateLimited')),
    'the RateLimited answer is recorded',
  );
  const auth = JSON.parse(String(frames[0]!.text)) as { type: string; params: { hmac: Record<string, unknown> } };
  assert.equal(auth.type, 'auth');
  assert.deepEqual(
    [auth.params.hmac.public_key, auth.params.hmac.nonce, auth.params.hmac.signature],
    ['[redacted]', '[redacted]', '[redacted]'],
  );
  assert.equal(typeof auth.params.hmac.unix_ts, 'number');

  const liveDb = join(h.dir, 'live.db');
  const live = await runCliCaptured(['collect'], { env: env({ TIERWATCH_DB: liveDb }) });
  assert.equal(live.code, 0, live.stderr + live.logs.text());

  const replay = await startReplay(transcript);
  try {
    assert.match(replay.stdout(), /2 session\(s\)/);
    const replayDb = join(h.dir, 'replayed.db');
    // Any credentials are accepted: the transcript's signature is redacted.
    const replayed = await runCliCaptured(['collect'], {
      env: env({
        TIERWATCH_DB: replayDb,
        QFEX_WS_URL: replay.url,
        QFEX_PUBLIC_KEY: 'qfex_pub_someone_else',
        QFEX_SECRET_KEY: 'qfex_secret_not_the_recorded_one',
      }),
    });
    assert.equal(replayed.code, 0, replayed.stderr + replayed.logs.text() + replay.logs());
    const expected = storedHistory(liveDb);
    assert.ok(expected.versions.length > 23);
    assert.deepEqual(storedHistory(replayDb), expected);
    // The replay answered the retried page with the recorded RateLimited first, as the exchange did.
    assert.ok(
      replayed.logs.lines.some((line) => line.code === 'QFEX_RATE_LIMITED'),
      'the recorded RateLimited was replayed',
    );

    // A page size the transcript never saw asks for requests it does not hold: a clear failure.
    const mismatch = await runCliCaptured(['collect'], {
      env: env({ TIERWATCH_DB: replayDb, QFEX_WS_URL: replay.url, TIERWATCH_PAGE_SIZE: '5' }),
    });
    assert.equal(mismatch.code, 1);
    const runs = await runCliCaptured(['runs', '--failed', '--format', 'json'], {
      env: env({ TIERWATCH_DB: replayDb }),
    });
    const failed = JSON.parse(runs.stdout) as Array<{ error_code: string; error_message: string }>;
    assert.equal(failed.length, 2);
    for (const run of failed) {
      assert.equal(run.error_code, 'QFEX_ERROR');
      assert.match(
        run.error_message,
        /NotInTranscript: the transcript holds no answer to get_available_leverage_levels \{"limit":5,"offset":0\}/,
      );
      assert.match(run.error_message, /it holds: .*\{"limit":7,"offset":0\}/);
    }
    assert.match(replay.logs(), /"level":"error".*transcript holds no answer/);
    // The failed sweeps left the replayed history as it was.
    assert.deepEqual(storedHistory(replayDb).versions, expected.versions);
  } finally {
    assert.equal(await replay.stop(), 0);
  }
});

test("the shipped transcript of the documentation's example frames replays into the documented tiers", async () => {
  const replay = await startReplay(DOCS_TRANSCRIPT);
  try {
    const dbPath = join(h.dir, 'docs.db');
    const base = { ...h.env, QFEX_WS_URL: replay.url, TIERWATCH_DB: dbPath, TIERWATCH_PAGE_SIZE: '10' };
    const collected = await runCliCaptured(['collect'], { env: base });
    assert.equal(collected.code, 0, collected.stderr + collected.logs.text() + replay.logs());
    const snapshot = await runCliCaptured(['snapshot', '--format', 'json'], { env: base });
    assert.equal(snapshot.code, 0, snapshot.stderr);
    const tiers = (JSON.parse(snapshot.stdout) as Array<Record<string, unknown>>).map(
      ({ symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id }) => ({
        symbol,
        leverage,
        initial_margin,
        maintenance_margin,
        max_notional,
        exchange_id,
      }),
    );
    assert.deepEqual(tiers, [
      {
        symbol: 'META-USD',
        leverage: '1',
        initial_margin: 1,
        maintenance_margin: 0.6666666666666666,
        max_notional: 195000,
        exchange_id: '04349aaf-b29c-456d-b255-7b9de6e180c4',
      },
      {
        symbol: 'META-USD',
        leverage: '2',
        initial_margin: 0.5,
        maintenance_margin: 0.3333333333333333,
        max_notional: 190000,
        exchange_id: '9dc9cc77-5222-47f3-80fe-16d48fa1082e',
      },
    ]);
    // And check, against the same replay, sees the same (reading every page, recording nothing).
    const check = await runCliCaptured(['check', '--record', join(h.dir, 'docs-again.jsonl')], { env: base });
    assert.equal(check.code, 0, check.stdout);
    assert.match(check.stdout, /read 2 valid tier\(s\) across 1 symbol\(s\) in 2 page\(s\)/);
  } finally {
    assert.equal(await replay.stop(), 0);
  }
});

test('bad --replay and --record arguments are usage errors that name the flag and quote the path', async () => {
  const missing = join(h.dir, 'no-such-transcript.jsonl');
  let run = await runCliCaptured(['simulate', '--replay', missing], { env: {} });
  assert.equal(run.code, 2);
  assert.match(run.stderr, new RegExp(`--replay.*${JSON.stringify(missing).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));

  const notTranscript = join(h.dir, 'not-a-transcript.jsonl');
  writeFileSync(notTranscript, '{"hello":1}\n');
  run = await runCliCaptured(['simulate', '--replay', notTranscript], { env: {} });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /line 1 is not a tierwatch transcript header/);

  run = await runCliCaptured(['simulate', '--replay', DOCS_TRANSCRIPT, '--tiers', '10'], { env: {} });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /`--replay` .* cannot be combined with --tiers/);

  run = await runCliCaptured(['check', '--record', join(h.dir, 'no-such-dir', 'x.jsonl')], { env: h.env });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /Cannot write the transcript `--record` ".*no-such-dir/);
});
