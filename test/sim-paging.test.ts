/** The simulator's leverage paging, error frames, legacy forms, faults and mutations, over real sockets with a raw ws client. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syntheticUniverse, type SimTier } from '../src/sim/index.ts';
import { authFrame, authed, RawClient, withSim } from './helpers/raw-qfex-client.ts';

const LIST = 'get_available_leverage_levels';

function pageRequest(limit: number, offset: number) {
  return { type: LIST, params: { limit, offset } };
}

async function page(client: RawClient, limit: number, offset: number): Promise<any[]> {
  client.send(pageRequest(limit, offset));
  const reply = await client.json();
  assert.ok(Array.isArray(reply.available_leverage_levels_response), JSON.stringify(reply).slice(0, 200));
  return reply.available_leverage_levels_response;
}

/** Pages the way a correct client must: advance by the rows received, stop on an empty page. */
async function sweep(client: RawClient, limit: number): Promise<{ rows: any[]; sizes: number[] }> {
  const rows: any[] = [];
  const sizes: number[] = [];
  for (;;) {
    const got = await page(client, limit, rows.length);
    sizes.push(got.length);
    if (got.length === 0) return { rows, sizes };
    rows.push(...got);
  }
}

function wire(t: SimTier) {
  return {
    id: t.id,
    symbol: t.symbol,
    initial_margin: t.initial_margin,
    maintenance_margin: t.maintenance_margin,
    max_notional: t.max_notional,
    leverage: t.leverage,
  };
}

test('a full sweep returns every tier in exchange order with the documented fields', async () => {
  await withSim({}, async (sim) => {
    const client = await authed(sim);
    const { rows, sizes } = await sweep(client, 1000);
    assert.deepEqual(rows, sim.tiers().map(wire));
    assert.deepEqual(Object.keys(rows[0]!), [
      'id',
      'symbol',
      'initial_margin',
      'maintenance_margin',
      'max_notional',
      'leverage',
    ]);
    assert.deepEqual(sizes, [rows.length, 0]);
    client.send({ type: LIST }); // no params: defaults limit 1000, offset 0
    assert.equal((await client.json()).available_leverage_levels_response.length, rows.length);
    client.ws.close();
  });
});

test('the server caps pages below the requested limit; the offsets seen show a client advancing by rows received', async () => {
  const universe = syntheticUniverse(23, 5);
  await withSim({ universe: { primary: universe }, maxPageSize: 7 }, async (sim) => {
    const client = await authed(sim);
    const { rows, sizes } = await sweep(client, 1000);
    assert.deepEqual(sizes, [7, 7, 7, 2, 0]);
    assert.deepEqual(rows, universe.map(wire));
    assert.deepEqual(
      sim.stats.lastRequests.map((r) => [r.page, r.limit, r.servedLimit, r.offset, r.rows]),
      [
        [1, 1000, 7, 0, 7],
        [2, 1000, 7, 7, 7],
        [3, 1000, 7, 14, 7],
        [4, 1000, 7, 21, 2],
        [5, 1000, 7, 23, 0],
      ],
    );
    assert.equal(sim.stats.pageRequests, 5);
    client.ws.close();
  });
});

test('legacy forms: max_position, numeric leverage, flat error frames', async () => {
  await withSim({ legacy: { maxPosition: true, numericLeverage: true, flatErrors: true } }, async (sim) => {
    const client = await authed(sim);
    const [row] = await page(client, 1, 0);
    assert.deepEqual(Object.keys(row), [
      'id',
      'symbol',
      'initial_margin',
      'maintenance_margin',
      'max_position',
      'leverage',
    ]);
    assert.equal(row.leverage, 1);
    assert.equal(row.max_position, sim.tiers()[0]!.max_notional);
    const bad = pageRequest(0, 0);
    client.send(bad);
    const error = await client.json();
    assert.deepEqual(Object.keys(error).sort(), ['error_code', 'incoming_message', 'message', 'type']);
    assert.equal(error.type, 'error');
    assert.equal(error.error_code, 'InvalidParameter');
    assert.deepEqual(error.incoming_message, bad);
    client.ws.close();
  });
});

test('InvalidParameter for bad limit/offset and InvalidJSONFormat for bad frames, the socket staying open', async () => {
  await withSim({}, async (sim) => {
    const client = await authed(sim);
    for (const params of [
      { limit: 0 },
      { limit: -5 },
      { limit: 2.5 },
      { limit: '10' },
      { offset: -1 },
      { offset: 1.5 },
      { limit: 10, offset: 'x' },
    ]) {
      const request = { type: LIST, params };
      client.send(request);
      const reply = await client.json();
      assert.equal(reply.err.error_code, 'InvalidParameter', JSON.stringify(params));
      assert.match(reply.err.message, 'offset' in params ? /^offset must be/ : /^limit must be/);
      assert.deepEqual(reply.err.incoming_message, request);
    }
    client.send('this is {not json');
    assert.deepEqual(await client.json(), {
      err: {
        error_code: 'InvalidJSONFormat',
        message: 'message is not valid JSON',
        incoming_message: 'this is {not json',
      },
    });
    for (const frame of [
      { type: 'teleport', params: {} },
      { params: {} },
      [1, 2],
      'null',
      { type: LIST, params: [] },
    ]) {
      client.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      assert.equal((await client.json()).err.error_code, 'InvalidJSONFormat', JSON.stringify(frame));
    }
    assert.equal(sim.stats.errorsSent['InvalidParameter'], 7);
    assert.equal(sim.stats.errorsSent['InvalidJSONFormat'], 6);
    assert.equal((await page(client, 2, 0)).length, 2, 'still usable');
    client.ws.close();
  });
  await withSim({ strict: true }, async (sim) => {
    const client = await authed(sim);
    client.send({ type: LIST });
    assert.equal((await client.json()).err.error_code, 'InvalidJSONFormat', 'strict: params is required');
    client.ws.close();
  });
});

test('a binary frame closes with 1003, an oversized frame with 1009', async () => {
  await withSim({ maxPayloadBytes: 1024 }, async (sim) => {
    const binary = await authed(sim);
    binary.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await binary.closed).code, 1003);
    const big = await authed(sim);
    big.send({ type: LIST, params: { limit: 10, offset: 0, padding: 'x'.repeat(2000) } });
    assert.equal((await big.closed).code, 1009);
  });
});

test('fault: drop at page N destroys the socket on that request, without an answer', async () => {
  await withSim({}, async (sim) => {
    sim.inject({ kind: 'drop_at_page', page: 2 });
    const client = await authed(sim);
    assert.equal((await page(client, 5, 0)).length, 5);
    client.send(pageRequest(5, 5));
    await assert.rejects(client.next(), /closed/);
    assert.equal((await client.closed).code, 1006);
    assert.deepEqual(
      sim.stats.lastRequests.map((r) => r.rows),
      [5, -1],
    );
    // Used up: the next connection pages through.
    const again = await authed(sim);
    assert.equal((await sweep(again, 50)).rows.length, sim.tiers().length);
    again.ws.close();
  });
});

test('fault: drop before page N lets page N−1 arrive, then closes before the next request', async () => {
  await withSim({}, async (sim) => {
    sim.inject({ kind: 'drop_before_page', page: 2, closeCode: 1011 });
    const client = await authed(sim);
    assert.equal((await page(client, 5, 0)).length, 5);
    assert.equal((await client.closed).code, 1011);
    assert.equal(sim.stats.pageRequests, 1);
    sim.inject({ kind: 'drop_before_page', page: 1 });
    const early = await RawClient.open(sim.url);
    early.send(authFrame());
    assert.deepEqual(await early.json(), { authenticated: true });
    assert.equal((await early.closed).code, 1006);
    sim.inject({ kind: 'drop_after_last_page' });
    const last = await authed(sim);
    await sweep(last, 1000);
    assert.equal((await last.closed).code, 1006);
  });
});

test('fault: RateLimited once carries a retry-after hint, then the retried page is served', async () => {
  await withSim({}, async (sim) => {
    sim.inject({ kind: 'error_reply', code: 'RateLimited', retryAfterMs: 250 });
    sim.inject({ kind: 'error_reply', code: 'ServerError', page: 3 });
    const client = await authed(sim);
    const request = pageRequest(5, 0);
    client.send(request);
    assert.deepEqual(await client.json(), {
      err: {
        error_code: 'RateLimited',
        message: 'You have exceeded the allowed message rate. Retry after 250ms.',
        incoming_message: request,
      },
    });
    assert.equal((await page(client, 5, 0)).length, 5, 'page 2: the retry');
    client.send(pageRequest(5, 5));
    assert.equal((await client.json()).err.error_code, 'ServerError', 'page 3');
    assert.equal((await page(client, 5, 5)).length, 5);
    assert.deepEqual(
      sim.firedFaults().map((f) => f.kind),
      ['error_reply', 'error_reply'],
    );
    assert.deepEqual(sim.pendingFaults(), []);
    client.ws.close();
  });
});

test('fault: a row inserted before the offset after page 1 shows as a duplicate on page 2, and is logged', async () => {
  await withSim({}, async (sim) => {
    sim.inject({ kind: 'shift_insert', afterPage: 1 });
    const client = await authed(sim);
    const first = await page(client, 5, 0);
    const second = await page(client, 5, 5);
    assert.deepEqual(second[0], first[4], 'the last row of page 1 moved to offset 5');
    assert.equal(sim.changeLog.length, 1);
    const added = sim.changeLog[0]!;
    assert.deepEqual([added.kind, added.symbol, added.leverage], ['added', 'AAPL-USD', '1.5']);
    assert.equal(sim.tiers()[1]!.leverage, '1.5');
    client.ws.close();
  });
});

test('fault: a row deleted before the offset after page 1 makes page 2 skip a row, and is logged', async () => {
  await withSim({}, async (sim) => {
    const before = sim.tiers().map(wire);
    sim.inject({ kind: 'shift_delete', afterPage: 1 });
    const client = await authed(sim);
    await page(client, 5, 0);
    const second = await page(client, 5, 5);
    assert.deepEqual(second[0], before[6], 'row 5 was silently skipped');
    assert.deepEqual(
      sim.changeLog.map((c) => [c.kind, c.symbol, c.leverage]),
      [['removed', before[0]!.symbol, before[0]!.leverage]],
    );
    client.ws.close();
  });
});

test('fault: a malformed row replaces the given index; delay and never-answer hold the page back', async () => {
  await withSim({}, async (sim) => {
    sim.inject({
      kind: 'malformed_row',
      page: 1,
      index: 2,
      row: { symbol: 'META-USD', leverage: 'NaN', initial_margin: 'Infinity' },
    });
    sim.inject({ kind: 'delay_page', page: 2, ms: 60 });
    sim.inject({ kind: 'never_answer_page', page: 3 });
    const client = await authed(sim);
    const rows = await page(client, 4, 0);
    assert.deepEqual(rows[2], { symbol: 'META-USD', leverage: 'NaN', initial_margin: 'Infinity' });
    assert.deepEqual(
      [rows[0], rows[1], rows[3]],
      [0, 1, 3].map((i) => wire(sim.tiers()[i]!)),
    );
    const started = Date.now();
    assert.equal((await page(client, 4, 4)).length, 4);
    assert.ok(Date.now() - started >= 55, 'delayed');
    client.send(pageRequest(4, 8));
    await client.expectSilence(100);
    assert.equal((await page(client, 4, 8)).length, 4, 'page 4 is answered again');
    client.ws.close();
  });
});

test('fault: infinite list always returns a full page of distinct rows; empty list returns none', async () => {
  await withSim({ universe: { primary: syntheticUniverse(6) } }, async (sim) => {
    sim.inject({ kind: 'infinite_list' });
    const client = await authed(sim);
    const keys = new Set<string>();
    for (let offset = 0; offset < 40; offset += 10) {
      const rows = await page(client, 10, offset);
      assert.equal(rows.length, 10);
      for (const r of rows) keys.add(`${r.symbol}/${r.leverage}`);
    }
    assert.equal(keys.size, 40);
    sim.inject({ kind: 'empty_list' });
    const empty = await authed(sim);
    assert.deepEqual(await page(empty, 10, 0), []);
    client.ws.close();
    empty.ws.close();
  });
});

test('fault: bad frames instead of page N (not JSON, wrong shape, binary, unexpected key, oversized)', async () => {
  await withSim({}, async (sim) => {
    for (const frame of ['non_json', 'wrong_shape', 'binary', 'unexpected_key'] as const) {
      sim.inject({ kind: 'bad_frame', frame });
    }
    const client = await authed(sim);
    client.send(pageRequest(3, 0));
    const nonJson = await client.next();
    assert.ok(nonJson.kind === 'text' && nonJson.json === undefined);
    client.send(pageRequest(3, 0));
    assert.equal(Array.isArray((await client.json()).available_leverage_levels_response), false);
    client.send(pageRequest(3, 0));
    assert.equal((await client.next()).kind, 'binary');
    client.send(pageRequest(3, 0));
    const unexpected = await client.json();
    assert.deepEqual(Object.keys(unexpected), ['unexpected_response']);
    assert.equal((await page(client, 3, 0)).length, 3, 'all used up');
    client.ws.close();
    sim.inject({ kind: 'bad_frame', frame: 'oversized', bytes: 5000 });
    const small = await authed(sim, authFrame(), { maxPayload: 4096 });
    const refused = new Promise<Error & { code?: string }>((resolve) => small.ws.once('error', resolve));
    small.send(pageRequest(3, 0));
    assert.equal((await refused).code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    await small.closed;
  });
});

test('mutations show in the next pages (also with pre-serialised pages) and in the change log', async () => {
  await withSim({ preserializePages: true }, async (sim) => {
    const client = await authed(sim);
    const before = await sweep(client, 10);
    assert.deepEqual((await sweep(client, 10)).rows, before.rows, 'cached pages are identical');
    sim.editTier('primary', 'META-USD', '20', { max_notional: 90000 });
    sim.removeTier('primary', 'AAPL-USD', '1');
    sim.listSymbol('primary', 'NVDA-USD', { levels: [1, 2] });
    const after = await sweep(client, 10);
    assert.deepEqual(after.rows, sim.tiers().map(wire));
    assert.equal(after.rows.find((r) => r.symbol === 'META-USD' && r.leverage === '20')!.max_notional, 90000);
    assert.equal(
      after.rows.some((r) => r.symbol === 'AAPL-USD' && r.leverage === '1'),
      false,
    );
    assert.deepEqual(
      sim.changeLog.map((c) => [c.kind, c.symbol, c.leverage]),
      [
        ['changed', 'META-USD', '20'],
        ['removed', 'AAPL-USD', '1'],
        ['added', 'NVDA-USD', '1'],
        ['added', 'NVDA-USD', '2'],
      ],
    );
    sim.revertTo(0);
    assert.deepEqual((await sweep(client, 10)).rows, before.rows);
    client.ws.close();
  });
});

test('get_user_leverage answers one row per symbol; set_user_leverage acks and changes it', async () => {
  await withSim({}, async (sim) => {
    const client = await authed(sim);
    client.send({ type: 'get_user_leverage', params: {} });
    const rows = (await client.json()).user_leverage_response;
    assert.equal(rows.length, new Set(sim.tiers().map((t) => t.symbol)).size);
    client.send({ type: 'set_user_leverage', params: { symbol: 'META-USD', leverage: 20.0 } });
    assert.deepEqual(await client.json(), { ack_response: true });
    client.send({ type: 'set_user_leverage', params: { symbol: 'META-USD', leverage: 7 } });
    assert.equal((await client.json()).err.error_code, 'InvalidParameter');
    client.send({ type: 'get_user_leverage', params: { limit: 100 } });
    const meta = (await client.json()).user_leverage_response.find((r: any) => r.symbol === 'META-USD');
    assert.equal(meta.leverage, '20');
    client.ws.close();
  });
});

test('TLS: serves wss:// with the given certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sim-tls-'));
  try {
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost,IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
    } catch {
      t.skip('openssl is not available');
      return;
    }
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    await withSim({ tls: { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert } }, async (sim) => {
      assert.match(sim.url, /^wss:\/\/localhost:\d+$/);
      const client = await authed(sim, authFrame(), { ca: cert });
      assert.equal((await page(client, 2, 0)).length, 2);
      client.ws.close();
      await assert.rejects(RawClient.open(sim.url), /self-signed|unable to verify|certificate/i);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
