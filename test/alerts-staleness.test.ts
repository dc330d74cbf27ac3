/**
 * Staleness alerts with an injected clock: one `stale` when no run has succeeded for longer than
 * the health threshold, one `recovered` when runs succeed again — never one per check or per failed
 * run, and not again after a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Alerting } from '../src/alerts/alerting.ts';
import { readAlertState } from '../src/alerts/outbox.ts';
import { afterCommit, alertHistory, Receiver, sweep, tier } from './alerts-fixture.ts';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);
const TIERS = [tier('META-USD', '20', 0.05, 0.025, 100_000)];

test('stale once after the threshold, not again on later checks, failed runs or a restart; recovered once when a run succeeds', async () => {
  const history = alertHistory();
  const receiver = new Receiver();
  await receiver.listen();
  let now = at(0);
  let ids = 0;
  const config = history.config({ TIERWATCH_WEBHOOK_URL: receiver.url, TIERWATCH_HEALTH_MAX_AGE: '10m' });
  const make = () =>
    new Alerting(config, {
      db: history.db,
      store: history.store,
      logger: history.logger,
      now: () => now,
      newId: () => `n-${++ids}`,
    });
  let alerting = make();
  try {
    alerting.start();
    sweep(history.store, [], at(-1)); // the account's baseline (its first sweep): never alerted
    sweep(history.store, TIERS, at(0));
    await afterCommit();
    await alerting.idle();
    assert.equal(receiver.requests.length, 1, 'the first sweep reports its tiers as added');

    now = at(5);
    assert.equal(alerting.checkStaleness(), null, 'within the threshold');
    now = at(11);
    assert.equal(alerting.checkStaleness(), 'stale');
    await alerting.idle();
    for (const minutes of [12, 15, 20]) {
      now = at(minutes);
      // A failed run: recorded in the ledger, then the daemon's after-run check.
      const runId = history.store.startRun({
        accountId: 'primary',
        endpoint: 'wss://sim.test',
        publicKey: null,
        startedAt: now,
      });
      history.store.failRun(runId, {
        status: 'failed',
        code: 'QFEX_CONNECT',
        message: 'refused',
        pages: 0,
        finishedAt: now,
      });
      alerting.afterRun();
      assert.equal(alerting.checkStaleness(), null);
    }
    await alerting.idle();
    assert.equal(receiver.requests.length, 2, 'exactly one stale notification');
    const stale = JSON.parse(receiver.requests[1]!.body);
    assert.equal(receiver.requests[1]!.headers['x-tierwatch-event'], 'stale');
    assert.equal(stale.type, 'stale');
    assert.equal(stale.at, at(11).toISOString());
    assert.equal(stale.last_success_at, at(0).toISOString());
    assert.equal(stale.threshold_seconds, 600);
    assert.match(stale.reason, /account primary: last successful sweep at 2026-03-01T12:00:00\.000Z, 660 s ago/);
    assert.equal(JSON.parse(readAlertState(history.db, 'staleness')!.value).state, 'stale');

    // Restart while still stale: the persisted state means no second `stale`, and no `recovered`
    // merely because the new process's clock starts afresh.
    await alerting.stop();
    history.db.close();
    history.reopen();
    now = at(25);
    alerting = make();
    alerting.start();
    assert.equal(alerting.checkStaleness(), null);
    now = at(40);
    assert.equal(alerting.checkStaleness(), null, 'stale again by the new clock, but already reported');
    await alerting.idle();
    assert.equal(receiver.requests.length, 2);

    // A successful run: one `recovered`; the run itself changed nothing, so it sends nothing else.
    now = at(41);
    sweep(history.store, TIERS, at(41));
    alerting.afterRun();
    await afterCommit();
    await alerting.idle();
    now = at(42);
    assert.equal(alerting.checkStaleness(), null);
    await alerting.idle();
    assert.equal(receiver.requests.length, 3);
    const recovered = JSON.parse(receiver.requests[2]!.body);
    assert.deepEqual(recovered, {
      id: recovered.id,
      type: 'recovered',
      at: at(41).toISOString(),
      last_success_at: at(41).toISOString(),
      stale_since: at(11).toISOString(),
    });
    assert.deepEqual(
      receiver.requests.map((request) => request.headers['x-tierwatch-event']),
      ['changes', 'stale', 'recovered'],
    );
  } finally {
    await alerting.stop();
    await receiver.close();
    history.close();
  }
});

test('a fresh daemon with no successful run yet gets a full threshold before it is stale', async () => {
  const history = alertHistory();
  const receiver = new Receiver();
  await receiver.listen();
  let now = at(0);
  const config = history.config({
    TIERWATCH_WEBHOOK_URL: receiver.url,
    TIERWATCH_HEALTH_MAX_AGE: '10m',
    TIERWATCH_WEBHOOK_FORMAT: 'slack',
  });
  const alerting = new Alerting(config, {
    db: history.db,
    store: history.store,
    logger: history.logger,
    now: () => now,
  });
  try {
    alerting.start();
    now = at(9);
    assert.equal(alerting.checkStaleness(), null);
    now = at(11);
    assert.equal(alerting.checkStaleness(), 'stale');
    await alerting.idle();
    assert.equal(receiver.requests.length, 1);
    assert.match(
      JSON.parse(receiver.requests[0]!.body).text,
      /^tierwatch: collection is STALE — account primary: no successful sweep since tierwatch started at 2026-03-01T12:00:00\.000Z, 660 s ago\./,
    );
  } finally {
    await alerting.stop();
    await receiver.close();
    history.close();
  }
});
