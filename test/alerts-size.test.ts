/**
 * Notifications stay small and inert: a sweep that lists thousands of new tiers sends the counts,
 * the first changes and the command line that lists them all (JSON at most 64 KB, Slack text within
 * its limit), and Slack text escapes every string from the exchange (`<!channel>`, links, `&`).
 * The account's first sweep is its baseline and is never alerted, so each test takes a baseline of
 * one tier first; the big change is a later sweep that adds a whole set of symbols at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTier, syntheticUniverse, type SimTier } from '../src/sim/universe.ts';
import { Receiver } from './alerts-fixture.ts';
import { runCliCaptured, startHarness } from './helpers/harness.ts';

const ADDED_TIERS = 3_000;
/** The baseline's one tier, sorted after every symbol the tests add. */
const BASELINE_TIER = makeTier('ZZZ-BASE', 5, 100_000);
/** The body size tierwatch promises to stay within. */
const MAX_BODY_BYTES = 64 * 1024;
/** Slack cuts `text` past 40,000 characters. */
const SLACK_TEXT_LIMIT = 40_000;

/** A receiver that refuses big bodies for good, as Slack and most gateways do. */
function refusingBig(receiver: Receiver): void {
  receiver.behaviour = (_index, request) => (Buffer.byteLength(request.body) > MAX_BODY_BYTES ? 413 : 'ok');
}

/** A baseline of one tier (not alerted), then a sweep that lists `added` besides it: alerted. */
async function bigSweep(format: 'json' | 'slack', added: SimTier[]) {
  const h = await startHarness({ universe: { primary: [BASELINE_TIER] } });
  const receiver = new Receiver();
  await receiver.listen();
  refusingBig(receiver);
  h.db.close();
  const env = {
    ...h.env,
    TIERWATCH_WEBHOOK_URL: receiver.url,
    TIERWATCH_WEBHOOK_FORMAT: format,
    TIERWATCH_WEBHOOK_RETRIES: '0',
  };
  const baseline = await runCliCaptured(['collect'], { env });
  assert.equal(baseline.code, 0, baseline.stderr);
  assert.equal(receiver.requests.length, 0, 'the baseline is not alerted');
  h.sim.setTiers('primary', [...added, BASELINE_TIER]);
  const result = await runCliCaptured(['collect'], { env });
  assert.equal(result.code, 0, result.stderr);
  return {
    h,
    receiver,
    env,
    async close() {
      await receiver.close();
      await h.close();
    },
  };
}

/** Runs a `tierwatch …` command line as printed in a notification (plain words, no quoting needed here). */
async function runPrinted(commandLine: string, env: Record<string, string>) {
  const words = commandLine.split(' ');
  assert.equal(words[0], 'tierwatch');
  return runCliCaptured([...words.slice(1), '--format', 'json'], { env });
}

test('json: a sweep that adds 3,000 tiers sends one notification under 64 KB with the counts, the first 100 changes and how to list the rest', async () => {
  const s = await bigSweep('json', syntheticUniverse(ADDED_TIERS));
  try {
    assert.equal(s.receiver.requests.length, 1, 'accepted at the first attempt');
    const request = s.receiver.requests[0]!;
    assert.ok(Buffer.byteLength(request.body) <= MAX_BODY_BYTES, `${Buffer.byteLength(request.body)} bytes`);
    const body = JSON.parse(request.body);
    assert.equal(body.total, ADDED_TIERS);
    assert.deepEqual(body.summary, { tightening: 0, loosening: ADDED_TIERS, mixed: 0 });
    assert.deepEqual(body.kinds, { added: ADDED_TIERS, changed: 0, removed: 0 });
    assert.equal(body.changes.length, 100);
    assert.equal(body.omitted, ADDED_TIERS - 100);
    assert.equal(body.changes[0].symbol, 'S000001-USD');
    assert.match(body.all_changes, /^tierwatch changes --since \S+ --until \S+ --account primary$/);

    // The command line lists exactly the run's changes.
    const listed = await runPrinted(body.all_changes, s.env);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout);
    assert.equal(rows.length, ADDED_TIERS);
    assert.ok(rows.every((row: any) => row.run_id === body.run.run_id));

    // A small run still carries every change, and says nothing is omitted.
    s.h.sim.editTier('primary', 'S000001-USD', '1', { max_notional: 1_000 });
    assert.equal((await runCliCaptured(['collect'], { env: s.env })).code, 0);
    const small = JSON.parse(s.receiver.requests[1]!.body);
    assert.deepEqual([small.total, small.omitted, small.changes.length, small.kinds.changed], [1, 0, 1, 1]);
  } finally {
    await s.close();
  }
});

test('slack: a sweep that adds 3,000 tiers sends a text within the limit, with the counts and how to list the rest', async () => {
  const s = await bigSweep('slack', syntheticUniverse(ADDED_TIERS));
  try {
    assert.equal(s.receiver.requests.length, 1);
    const { text } = JSON.parse(s.receiver.requests[0]!.body);
    assert.ok(text.length <= SLACK_TEXT_LIMIT, `${text.length} characters`);
    const lines = text.split('\n');
    assert.match(lines[0], /^tierwatch: 3000 tier changes on account primary \(3000 loosening\)/);
    assert.equal(lines.length, 22, 'head, 20 changes, the pointer to the rest');
    const more = /^…and 2980 more: (tierwatch changes .*)$/.exec(lines.at(-1));
    assert.ok(more, lines.at(-1));
    // It lists that run's changes and no later ones.
    s.h.sim.editTier('primary', 'S000001-USD', '1', { max_notional: 1_000 });
    assert.equal((await runCliCaptured(['collect'], { env: s.env })).code, 0);
    const listed = await runPrinted(more[1]!, s.env);
    const rows = JSON.parse(listed.stdout);
    assert.equal(rows.length, ADDED_TIERS);
    assert.ok(
      rows.every((row: any) => row.run_id === 2),
      'the run after the baseline',
    );
  } finally {
    await s.close();
  }
});

test('slack: strings from the exchange arrive inert (&, <, > escaped), and huge symbols keep both formats within their limits', async () => {
  const hostile = [
    makeTier('<!channel>', 5, 100_000),
    makeTier('<https://evil.example|META-USD>', 10, 100_000),
    makeTier('A&B <@U123>', 2, 100_000),
  ];
  const s = await bigSweep('slack', hostile);
  try {
    const { text } = JSON.parse(s.receiver.requests[0]!.body);
    assert.doesNotMatch(text, /[<>]/, text);
    assert.doesNotMatch(text, /&(?!amp;|lt;|gt;)/, 'every & starts an escape');
    assert.match(text, /&lt;!channel&gt;/);
    assert.match(text, /&lt;https:\/\/evil\.example\|META-USD&gt;/);
    assert.match(text, /A&amp;B &lt;@U123&gt;/);
  } finally {
    await s.close();
  }

  // 30 symbols of 20,000 characters each: both formats stay within their limits.
  const huge = Array.from({ length: 30 }, (_, index) =>
    makeTier(`${String(index).padStart(2, '0')}${'<X>'.repeat(6_666)}`, 5, 100_000),
  );
  for (const format of ['slack', 'json'] as const) {
    const big = await bigSweep(format, huge);
    try {
      assert.equal(big.receiver.requests.length, 1);
      const body = big.receiver.requests[0]!.body;
      assert.ok(Buffer.byteLength(body) <= MAX_BODY_BYTES, `${format}: ${Buffer.byteLength(body)} bytes`);
      if (format === 'slack') {
        const { text } = JSON.parse(body);
        assert.ok(text.length <= SLACK_TEXT_LIMIT, `${text.length} characters`);
        assert.doesNotMatch(text, /[<>]/);
        assert.match(text.split('\n').at(-1), /^…and \d+ more: tierwatch changes /);
      } else {
        const document = JSON.parse(body);
        assert.equal(document.total, 30);
        assert.equal(document.omitted, 30 - document.changes.length);
        assert.ok(document.changes.length >= 1);
      }
    } finally {
      await big.close();
    }
  }
});
