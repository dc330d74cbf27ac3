/**
 * The collectors' leadership lease and its fencing (issue 15), against a real Postgres: the lease
 * is judged by the database's clock, so these tests use short leases (1–2 s) and real time, with
 * generous deadlines for a loaded machine.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { isTierwatchError } from '../src/errors.ts';
import { createPgPool } from '../src/store/pg/connection.ts';
import { DEFAULT_LEASE_SETTINGS, LeaderLease, type LeaseSettings } from '../src/store/pg/lease.ts';
import { keepLeadership } from '../src/store/pg/leadership.ts';
import { migratePostgres } from '../src/store/pg/migrate.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';

after(stopPgServer);

const pools: pg.Pool[] = [];
after(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
});

/** A migrated fresh database, and a pool per collector (each collector has its own sessions). */
async function setup(t: TestContext, collectors: number): Promise<{ pools: pg.Pool[] } | null> {
  const server = await postgresOrSkip(t);
  if (server === null) return null;
  const url = await server.createDatabase('lease');
  await migratePostgres(url);
  const created = Array.from({ length: collectors }, () => createPgPool(url));
  pools.push(...created);
  return { pools: created };
}

function lease(pool: pg.Pool, holder: string, settings: Partial<LeaseSettings>): LeaderLease {
  return new LeaderLease(pool, { holder, settings });
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls tryAcquire until it wins or the deadline passes; returns the epoch and how long it took. */
async function acquireWithin(candidate: LeaderLease, deadlineMs: number): Promise<{ epoch: number; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const epoch = await candidate.tryAcquire();
    if (epoch !== null) return { epoch, waitedMs: Date.now() - started };
    if (Date.now() - started > deadlineMs) {
      assert.fail(`${candidate.holder} did not take the lease within ${deadlineMs} ms`);
    }
    await delay(50);
  }
}

async function metaValue(pool: pg.Pool, key: string): Promise<string | null> {
  const result = await pool.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
  return result.rows[0]?.value ?? null;
}

const writeMeta = (key: string, value: string) => async (client: pg.PoolClient) => {
  await client.query('INSERT INTO meta (key, value) VALUES ($1, $2)', [key, value]);
};

test(
  'a standby takes over only once the leader’s lease has expired by the database clock, with the next epoch',
  { timeout: 60_000 },
  async (t) => {
    const ready = await setup(t, 2);
    if (ready === null) return;
    const settings = { ttlMs: 5000 }; // long enough that a stalled machine keeps it across the next few queries
    const a = lease(ready.pools[0]!, 'host-a', settings);
    const b = lease(ready.pools[1]!, 'host-b', settings);
    assert.equal(await a.tryAcquire(), 1);
    assert.equal(await b.tryAcquire(), null, 'a live lease is not taken');
    assert.equal(await a.tryAcquire(), 1, 'the holder asking again keeps its epoch');
    const held = await a.current();
    assert.ok(held !== null);
    assert.equal(held.holder, 'host-a');
    // The leader stops renewing (dead, frozen, cut off): the standby wins once the lease has expired.
    const { epoch } = await acquireWithin(b, 20_000);
    assert.equal(epoch, 2);
    const taken = await b.current();
    assert.ok(
      taken !== null && taken.acquired_at >= held.expires_at,
      `taken at ${taken?.acquired_at}, not before the expiry ${held.expires_at}`,
    );
    assert.equal(taken.holder, 'host-b');
    // The old leader finds out at its next renewal, and cannot take it back while it is live.
    assert.equal(await a.renew(), false);
    assert.equal(a.epoch, null);
    assert.equal(await a.tryAcquire(), null);
  },
);

test(
  'fencing: a leader that lost the lease between sweeps writes nothing and fails with DB_LEADERSHIP_LOST',
  { timeout: 60_000 },
  async (t) => {
    const ready = await setup(t, 2);
    if (ready === null) return;
    const settings = { ttlMs: 4000 }; // a must still hold it for its first write, even on a stalled machine
    const a = lease(ready.pools[0]!, 'host-a', settings);
    const b = lease(ready.pools[1]!, 'host-b', settings);
    assert.equal(await a.tryAcquire(), 1);
    await a.writeTransaction(writeMeta('written-by-1', 'a'));
    await acquireWithin(b, 20_000);
    // a still believes it leads (it has not renewed since): its next write is fenced off.
    assert.equal(a.epoch, 1);
    await assert.rejects(a.writeTransaction(writeMeta('stale', 'a')), (error) => {
      assert.ok(isTierwatchError(error, 'DB_LEADERSHIP_LOST'), String(error));
      assert.match(error.message, /host-b holds it under epoch 2/);
      return true;
    });
    assert.equal(await metaValue(ready.pools[0]!, 'stale'), null);
    assert.equal(a.epoch, null);
    await b.writeTransaction(writeMeta('written-by-2', 'b'));
    assert.equal(await metaValue(ready.pools[0]!, 'written-by-1'), 'a');
    assert.equal(await metaValue(ready.pools[0]!, 'written-by-2'), 'b');
  },
);

test(
  'fencing: a leader frozen inside its write transaction past its lease, a takeover, then it resumes — its commit writes nothing and fails with DB_LEADERSHIP_LOST',
  { timeout: 60_000 },
  async (t) => {
    const ready = await setup(t, 2);
    if (ready === null) return;
    // writeTimeoutMs bounds how long the frozen transaction can hold the lease row: the server ends it.
    const settings = { ttlMs: 2000, writeTimeoutMs: 500 };
    const a = lease(ready.pools[0]!, 'host-a', settings);
    const b = lease(ready.pools[1]!, 'host-b', settings);
    assert.equal(await a.tryAcquire(), 1);
    let resume!: () => void;
    const frozen = new Promise<void>((resolve) => (resume = resolve));
    let wroteFirst = false;
    const write = a.writeTransaction(async (client) => {
      await client.query(`INSERT INTO meta (key, value) VALUES ('frozen-sweep', 'a')`);
      wroteFirst = true;
      await frozen; // SIGSTOP, a GC pause, a VM migration…
      await client.query(`INSERT INTO meta (key, value) VALUES ('frozen-sweep-2', 'a')`);
    });
    const outcome = write.then(
      () => null,
      (error: unknown) => error,
    );
    const { epoch } = await acquireWithin(b, 20_000);
    assert.equal(epoch, 2);
    assert.ok(wroteFirst, 'the frozen leader had written inside its transaction');
    resume();
    const error = await outcome;
    assert.ok(
      isTierwatchError(error, 'DB_LEADERSHIP_LOST'),
      `the resumed leader fails with DB_LEADERSHIP_LOST, got ${String(error)}`,
    );
    assert.equal(
      await metaValue(ready.pools[1]!, 'frozen-sweep'),
      null,
      'nothing of the frozen transaction was stored',
    );
    assert.equal(await metaValue(ready.pools[1]!, 'frozen-sweep-2'), null);
    assert.equal(a.epoch, null);
    // The new leader writes; the old one cannot, even by trying again.
    await b.writeTransaction(writeMeta('after-takeover', 'b'));
    await assert.rejects(a.writeTransaction(writeMeta('again', 'a')), (e) => isTierwatchError(e, 'DB_LEADERSHIP_LOST'));
    assert.equal(await metaValue(ready.pools[1]!, 'after-takeover'), 'b');
  },
);

test(
  'an open write transaction holds a takeover off until it ends, so a commit can never land after a newer epoch’s',
  { timeout: 60_000 },
  async (t) => {
    const ready = await setup(t, 2);
    if (ready === null) return;
    const a = lease(ready.pools[0]!, 'host-a', { ttlMs: 1000, writeTimeoutMs: 20_000 });
    const b = lease(ready.pools[1]!, 'host-b', { ttlMs: 1000, acquireLockWaitMs: 200 });
    assert.equal(await a.tryAcquire(), 1);
    let attemptsDuringTransaction = 0;
    await a.writeTransaction(async (client) => {
      await client.query(`INSERT INTO meta (key, value) VALUES ('slow-sweep', 'a')`);
      // Well past the lease's expiry, the standby keeps trying: the leader's renewal holds the row.
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        assert.equal(await b.tryAcquire(), null);
        attemptsDuringTransaction += 1;
      }
    });
    assert.ok(attemptsDuringTransaction > 0);
    assert.equal(await metaValue(ready.pools[1]!, 'slow-sweep'), 'a', 'the leader committed under its own epoch');
    const { epoch } = await acquireWithin(b, 20_000);
    assert.equal(epoch, 2, 'the takeover comes after the commit');
  },
);

test(
  'a graceful release hands over at once; epochs only grow, and one of three contenders wins each round',
  { timeout: 60_000 },
  async (t) => {
    const ready = await setup(t, 3);
    if (ready === null) return;
    // A long lease: only a release can explain a handover within this test.
    const contenders = ready.pools.map((pool, i) => lease(pool, `host-${i}`, { ttlMs: 600_000 }));
    let lastEpoch = 0;
    for (let round = 0; round < 5; round += 1) {
      const epochs = await Promise.all(contenders.map((c) => c.tryAcquire()));
      const winners = epochs.filter((epoch): epoch is number => epoch !== null);
      assert.equal(winners.length, 1, `round ${round}: exactly one winner (${JSON.stringify(epochs)})`);
      assert.ok(winners[0]! > lastEpoch, `round ${round}: epoch ${winners[0]} after ${lastEpoch}`);
      lastEpoch = winners[0]!;
      const winner = contenders[epochs.findIndex((epoch) => epoch !== null)]!;
      await winner.writeTransaction(writeMeta(`round-${round}`, winner.holder));
      const started = Date.now();
      await winner.release();
      await assert.rejects(winner.writeTransaction(writeMeta(`late-${round}`, winner.holder)), (e) =>
        isTierwatchError(e, 'DB_LEADERSHIP_LOST'),
      );
      const next = contenders.find((c) => c !== winner)!;
      const taken = await next.tryAcquire();
      assert.equal(taken, lastEpoch + 1, 'the next contender takes over at once after a release');
      assert.ok(Date.now() - started < 10_000);
      await next.release();
      lastEpoch = taken;
    }
    const row = await contenders[0]!.current();
    assert.equal(row?.epoch, lastEpoch);
    assert.equal(row?.live, false, 'released');
  },
);

test(
  'the leadership loop: one leader; a leader that stops renewing is replaced within ttl + poll; a graceful stop hands over at once',
  { timeout: 90_000 },
  async (t) => {
    const ready = await setup(t, 3);
    if (ready === null) return;
    // A lease of 3 s renewed every 0.3 s: a loaded machine's stalls do not cost the leader its lease.
    const settings = { ttlMs: 3000, renewEveryMs: 300, pollEveryMs: 300 };
    const events: Array<{ holder: string; epoch: number; at: number }> = [];
    const start = (i: number) => {
      const candidate = lease(ready.pools[i]!, `host-${i}`, settings);
      const controller = new AbortController();
      // Read when the loop stops: a dying leader does not release.
      const options = {
        signal: controller.signal,
        releaseOnStop: true,
        onElected: (epoch: number) => events.push({ holder: candidate.holder, epoch, at: Date.now() }),
      };
      const done = keepLeadership(candidate, options);
      return { candidate, controller, options, done };
    };
    const waitForEvents = async (count: number, deadlineMs: number) => {
      const until = Date.now() + deadlineMs;
      while (events.length < count) {
        if (Date.now() > until) {
          assert.fail(`expected ${count} elections within ${deadlineMs} ms, saw ${JSON.stringify(events)}`);
        }
        await delay(25);
      }
    };
    const loops = [start(0), start(1), start(2)];
    await waitForEvents(1, 10_000);
    await delay(1000); // several renewals and polls: still one leader
    assert.equal(events.length, 1);
    const first = loops.find((loop) => loop.candidate.holder === events[0]!.holder)!;

    // The leader dies without a release: a standby takes over within ttl + poll (plus margin for load).
    first.options.releaseOnStop = false;
    const killedAt = Date.now();
    first.controller.abort();
    await first.done;
    await waitForEvents(2, 15_000);
    const takeoverMs = events[1]!.at - killedAt;
    assert.ok(takeoverMs <= settings.ttlMs + settings.pollEveryMs + 3000, `takeover after ${takeoverMs} ms`);
    assert.notEqual(events[1]!.holder, events[0]!.holder);
    assert.equal(events[1]!.epoch, events[0]!.epoch + 1);

    // A graceful stop releases: the last standby takes over long before a lease would have run out.
    const second = loops.find((loop) => loop.candidate.holder === events[1]!.holder)!;
    const stoppedAt = Date.now();
    second.controller.abort();
    await second.done;
    await waitForEvents(3, 15_000);
    assert.ok(events[2]!.at - stoppedAt < settings.ttlMs, `handover after ${events[2]!.at - stoppedAt} ms`);
    assert.equal(events[2]!.epoch, events[1]!.epoch + 1);
    const last = loops.find((loop) => loop.candidate.holder === events[2]!.holder)!;
    last.controller.abort();
    await last.done;
  },
);

test(
  'a leader whose session the server terminates mid-transaction loses that transaction, not its leadership: the error is not DB_LEADERSHIP_LOST and the next write succeeds',
  { timeout: 60_000 },
  async (t) => {
    const ready = await setup(t, 2);
    if (ready === null) return;
    const a = lease(ready.pools[0]!, 'host-a', { ttlMs: 30_000 });
    assert.equal(await a.tryAcquire(), 1);
    const write = a.writeTransaction(async (client) => {
      await client.query(`INSERT INTO meta (key, value) VALUES ('terminated', 'a')`);
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // An operator, a failover of the server, a proxy restart: the session ends from the other side.
      await ready.pools[1]!.query('SELECT pg_terminate_backend($1)', [pid]);
      await client.query(`INSERT INTO meta (key, value) VALUES ('terminated-2', 'a')`);
    });
    await assert.rejects(write, (error) => {
      assert.ok(!isTierwatchError(error, 'DB_LEADERSHIP_LOST'), `still the leader, got ${String(error)}`);
      return true;
    });
    assert.equal(await metaValue(ready.pools[1]!, 'terminated'), null, 'the transaction was rolled back');
    assert.equal(a.epoch, 1);
    await a.writeTransaction(writeMeta('after', 'a'));
    assert.equal(await metaValue(ready.pools[1]!, 'after'), 'a');
  },
);

test(
  'with the default settings, a standby takes over within the documented 20 s (lease TTL + standby poll) of the leader’s last renewal',
  { timeout: 90_000 },
  async (t) => {
    const ready = await setup(t, 2);
    if (ready === null) return;
    const { ttlMs, pollEveryMs, writeTimeoutMs } = DEFAULT_LEASE_SETTINGS;
    assert.equal(ttlMs + pollEveryMs, 20_000, 'the bound docs/teams.md states');
    assert.ok(2 * writeTimeoutMs < ttlMs, 'a frozen write transaction is ended before its lease');
    const leader = new LeaderLease(ready.pools[0]!, { holder: 'host-a' });
    assert.equal(await leader.tryAcquire(), 1);
    // The leader renews once more, then dies (no release): its lease runs from this renewal.
    await leader.writeTransaction(writeMeta('last-sweep', 'a'));
    const lastRenewal = Date.now();
    const standby = new LeaderLease(ready.pools[1]!, { holder: 'host-b' });
    const controller = new AbortController();
    let electedAt = 0;
    const loop = keepLeadership(standby, { signal: controller.signal, onElected: () => (electedAt = Date.now()) });
    try {
      const deadline = lastRenewal + ttlMs + pollEveryMs + 10_000;
      while (electedAt === 0 && Date.now() < deadline) await delay(100);
      assert.ok(electedAt > 0, 'the standby took over');
      const takeoverMs = electedAt - lastRenewal;
      // Not before the lease ran out (less a margin for the two clocks' reading), within the bound plus load margin.
      assert.ok(takeoverMs >= ttlMs - 1000, `took over after ${takeoverMs} ms, before the lease ran out`);
      assert.ok(takeoverMs <= ttlMs + pollEveryMs + 3000, `took over after ${takeoverMs} ms`);
      assert.equal(standby.epoch, 2);
    } finally {
      controller.abort();
      await loop;
    }
  },
);
