/**
 * `tierwatch collect` alerts as the daemon does: one notification per run that changed something,
 * written with the sweep and delivered before the command ends; an undeliverable one waits in the
 * outbox and goes out, once, with the next collect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Receiver } from './alerts-fixture.ts';
import { runCliCaptured, startHarness } from './helpers/harness.ts';

const collect = async (env: Record<string, string>): Promise<number> =>
  (await runCliCaptured(['collect'], { env })).code;

test('collect sends one notification per run with changes, and a missed one with the next collect', async () => {
  const h = await startHarness();
  const receiver = new Receiver();
  await receiver.listen();
  try {
    h.db.close();
    const env = { ...h.env, TIERWATCH_WEBHOOK_URL: receiver.url, TIERWATCH_WEBHOOK_RETRIES: '0' };

    assert.equal(await collect(env), 0);
    assert.equal(
      receiver.requests.length,
      0,
      'the first sweep is the baseline (every tier listed): not news, never sent',
    );

    assert.equal(await collect(env), 0);
    assert.equal(receiver.requests.length, 0, 'an unchanged run sends nothing');

    h.sim.editTier('primary', 'META-USD', '20', { max_notional: 50_000 });
    receiver.behaviour = (index) => (index === 0 ? 500 : 'ok');
    assert.equal(await collect(env), 0, 'a failed delivery never fails the collect');
    assert.equal(receiver.requests.length, 1);
    assert.equal(receiver.distinct().length, 1);

    assert.equal(await collect(env), 0);
    const bodies = receiver.bodies();
    assert.equal(receiver.requests.length, 2, 'the pending notification is retried once by the next collect');
    assert.equal(receiver.distinct().length, 1, 'and it is the same notification (same Idempotency-Key)');
    const change = bodies[0]!.changes[0];
    assert.deepEqual(
      [change.symbol, change.leverage, change.classification, change.after.max_notional],
      ['META-USD', '20', 'tightening', 50_000],
    );
  } finally {
    await receiver.close();
    await h.close();
  }
});
