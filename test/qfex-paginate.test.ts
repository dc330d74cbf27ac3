import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TierwatchError } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import { fetchAllTiers, type PageOptions } from '../src/qfex/paginate.ts';

interface RawRow {
  id: string;
  symbol: string;
  leverage: string;
  initial_margin: number;
  maintenance_margin: number;
  max_notional: number;
}

function row(symbol: string, leverage: number): RawRow {
  return {
    id: `${symbol}/${leverage}`,
    symbol,
    leverage: String(leverage),
    initial_margin: 1 / leverage,
    maintenance_margin: (1 / leverage) * (2 / 3),
    max_notional: 200000 - leverage * 1000,
  };
}

function universe(count: number): RawRow[] {
  const rows: RawRow[] = [];
  for (let i = 0; rows.length < count; i++) {
    for (let leverage = 1; leverage <= 10 && rows.length < count; leverage++) {
      rows.push(row(`SYM${String(i).padStart(6, '0')}-USD`, leverage));
    }
  }
  return rows;
}

/** An in-memory exchange: serves `list` with a server-side page cap; `beforeServe` may mutate it. */
function fakeExchange(list: RawRow[], cap = Infinity, beforeServe?: (call: number, list: RawRow[]) => void) {
  const calls: Array<{ limit: number; offset: number }> = [];
  const requestPage = async (limit: number, offset: number): Promise<unknown[]> => {
    calls.push({ limit, offset });
    beforeServe?.(calls.length, list);
    return list.slice(offset, offset + Math.min(limit, cap));
  };
  return { calls, requestPage };
}

function options(overrides: Partial<PageOptions> = {}): PageOptions & { delays: number[] } {
  const delays: number[] = [];
  return {
    pageSize: 1000,
    maxPages: 10_000,
    maxShiftRetries: 2,
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 1000 },
    sleep: async (ms) => {
      delays.push(ms);
    },
    random: () => 0.5,
    delays,
    ...overrides,
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<TierwatchError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TierwatchError, String(error));
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected ${code}`);
}

test('a server that caps pages below the limit is paged to the end, overlapping by one row', async () => {
  const list = universe(250);
  const exchange = fakeExchange(list, 100);
  const result = await fetchAllTiers(exchange.requestPage, options());
  assert.equal(result.tiers.length, 250);
  assert.deepEqual(
    result.tiers.map((tier) => `${tier.symbol}/${tier.leverage}`),
    list.map((raw) => raw.id),
  );
  assert.deepEqual(exchange.calls, [
    { limit: 1000, offset: 0 },
    { limit: 1000, offset: 99 },
    { limit: 1000, offset: 198 },
    { limit: 1000, offset: 249 },
  ]);
  assert.equal(result.pages, 4);
  assert.equal(result.requests, 4);
});

test('a list that fits one page takes one more request to confirm the end', async () => {
  const exchange = fakeExchange(universe(30));
  const result = await fetchAllTiers(exchange.requestPage, options());
  assert.equal(result.tiers.length, 30);
  assert.deepEqual(
    exchange.calls.map((call) => call.offset),
    [0, 29],
  );
  assert.equal(result.tiers[0]?.exchange_id, 'SYM000000-USD/1');
});

test('a server that caps pages at one row is not mistaken for the end', async () => {
  const exchange = fakeExchange(universe(3), 1);
  const result = await fetchAllTiers(exchange.requestPage, options({ pageSize: 1 }));
  assert.equal(result.tiers.length, 3);
  assert.deepEqual(
    exchange.calls.map((call) => call.offset),
    [0, 1, 2, 3],
  );
});

test('observedAt is the instant the last page arrived', async () => {
  let tick = 0;
  const result = await fetchAllTiers(
    fakeExchange(universe(25), 10).requestPage,
    options({ now: () => new Date(Date.UTC(2026, 0, 1, 0, 0, ++tick)) }),
  );
  assert.equal(result.pages, 4);
  assert.equal(result.observedAt.toISOString(), '2026-01-01T00:00:04.000Z');
});

test('a row inserted before the offset during paging restarts the sweep from 0', async () => {
  const list = universe(250);
  const exchange = fakeExchange(list, 100, (call, rows) => {
    if (call === 2) rows.unshift(row('AAA-USD', 5));
  });
  const result = await fetchAllTiers(exchange.requestPage, options());
  assert.equal(result.tiers.length, 251);
  assert.equal(result.tiers[0]?.symbol, 'AAA-USD');
  assert.deepEqual(
    exchange.calls.map((call) => call.offset),
    [0, 99, 0, 99, 198, 250],
  );
  assert.equal(result.requests, 6);
  assert.equal(result.pages, 4);
});

test('a row deleted before the offset (a silently skipped row) is detected and the sweep restarts', async () => {
  const list = universe(250);
  const removed = list[10]!.id;
  const exchange = fakeExchange(list, 100, (call, rows) => {
    if (call === 2) rows.splice(10, 1);
  });
  const result = await fetchAllTiers(exchange.requestPage, options());
  assert.equal(result.tiers.length, 249);
  assert.ok(!result.tiers.some((tier) => `${tier.symbol}/${tier.leverage}` === removed));
  assert.deepEqual(exchange.calls.map((call) => call.offset).slice(0, 3), [0, 99, 0]);
});

test('the overlap row changing value mid-sweep is a shift too', async () => {
  const exchange = fakeExchange(universe(150), 100, (call, rows) => {
    if (call === 2) rows[99] = { ...rows[99]!, max_notional: 1 };
  });
  const result = await fetchAllTiers(exchange.requestPage, options());
  assert.equal(result.tiers[99]?.max_notional, 1);
  assert.deepEqual(
    exchange.calls.map((call) => call.offset),
    [0, 99, 0, 99, 149],
  );
});

test('rows deleted at the end so that the overlap row is gone: shift', async () => {
  const exchange = fakeExchange(universe(150), 100, (call, rows) => {
    if (call === 2) rows.splice(50);
  });
  const result = await fetchAllTiers(exchange.requestPage, options());
  assert.equal(result.tiers.length, 50);
});

test('a list that keeps shifting fails with PAGINATION_INCONSISTENT after the bounded restarts', async () => {
  let inserted = 0;
  const exchange = fakeExchange(universe(250), 100, (call, rows) => {
    if (call % 2 === 0) rows.unshift(row(`NEW${inserted++}-USD`, 1));
  });
  await rejectsWith(
    fetchAllTiers(exchange.requestPage, options({ maxShiftRetries: 2 })),
    'PAGINATION_INCONSISTENT',
    /3 passes/,
  );
  assert.equal(exchange.calls.filter((call) => call.offset === 0).length, 3);
});

test('the same (symbol, leverage) twice in one sweep is a shift', async () => {
  const list = universe(5);
  list.push({ ...list[2]!, leverage: '3.0' });
  const exchange = fakeExchange(list);
  await rejectsWith(
    fetchAllTiers(exchange.requestPage, options({ maxShiftRetries: 1 })),
    'PAGINATION_INCONSISTENT',
    /SYM000000-USD 3 came twice/,
  );
  assert.equal(exchange.calls.length, 2);
});

test('an exchange that always returns a full page hits the page limit loudly', async () => {
  const requestPage = async (limit: number, offset: number) =>
    Array.from({ length: limit }, (_, index) => row(`S${offset + index}-USD`, 2));
  await rejectsWith(
    fetchAllTiers(requestPage, options({ pageSize: 10, maxPages: 5 })),
    'PAGE_LIMIT_REACHED',
    /5 pages/,
  );
});

test('the page limit counts the final empty page: maxPages must leave room for it', async () => {
  const exchange = fakeExchange(universe(10), 5);
  await rejectsWith(fetchAllTiers(exchange.requestPage, options({ maxPages: 3 })), 'PAGE_LIMIT_REACHED');
  const ok = fakeExchange(universe(10), 5);
  assert.equal((await fetchAllTiers(ok.requestPage, options({ maxPages: 4 }))).tiers.length, 10);
});

test('an empty tier list is EMPTY_SWEEP', async () => {
  await rejectsWith(fetchAllTiers(fakeExchange([]).requestPage, options()), 'EMPTY_SWEEP');
});

test('one bad row fails the whole sweep with ROW_INVALID naming it, without retrying', async () => {
  const list = universe(150);
  (list[120] as unknown as Record<string, unknown>).initial_margin = 'NaN';
  const exchange = fakeExchange(list, 100);
  const error = await rejectsWith(
    fetchAllTiers(exchange.requestPage, options()),
    'ROW_INVALID',
    /offset 120 \(symbol "SYM000012-USD", leverage "1"\)/,
  );
  assert.equal(error.details?.field, 'initial_margin');
  assert.equal(exchange.calls.length, 2);
});

function rateLimited(retryAfterMs: number | null): TierwatchError {
  return new TierwatchError('QFEX_RATE_LIMITED', 'RateLimited', { retryable: true, details: { retryAfterMs } });
}

test('RateLimited with a retry-after hint is honoured (bounded) and then succeeds', async () => {
  const list = universe(20);
  let failures = 2;
  const requestPage = async (limit: number, offset: number) => {
    if (offset > 0 && failures-- > 0) throw rateLimited(failures === 1 ? 300 : 5000);
    return list.slice(offset, offset + limit);
  };
  const opts = options({ pageSize: 10 });
  const result = await fetchAllTiers(requestPage, opts);
  assert.equal(result.tiers.length, 20);
  // 300 ms as hinted (more than the 10-20 ms backoff), then 5000 ms capped at maxDelayMs.
  assert.deepEqual(opts.delays, [300, 1000]);
  assert.equal(result.requests, result.pages + 2);
});

test('ServerError is retried with growing backoff, then rethrown', async () => {
  let calls = 0;
  const requestPage = async () => {
    calls++;
    throw new TierwatchError('QFEX_SERVER_ERROR', 'ServerError', { retryable: true });
  };
  const opts = options({ retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 300 }, random: () => 0.999 });
  await rejectsWith(fetchAllTiers(requestPage, opts), 'QFEX_SERVER_ERROR');
  assert.equal(calls, 4);
  assert.deepEqual(opts.delays, [100, 200, 300]);
  const jittered = options({ retry: { attempts: 2, baseDelayMs: 100, maxDelayMs: 1000 }, random: () => 0 });
  await rejectsWith(fetchAllTiers(requestPage, jittered), 'QFEX_SERVER_ERROR');
  assert.deepEqual(jittered.delays, [50, 100]);
});

test('other request failures pass through untouched and are not retried', async () => {
  let calls = 0;
  const requestPage = async () => {
    calls++;
    throw new TierwatchError('QFEX_CLOSED', 'closed', { retryable: true });
  };
  await rejectsWith(fetchAllTiers(requestPage, options()), 'QFEX_CLOSED');
  assert.equal(calls, 1);
});

test('an aborted signal stops paging with ABORTED, also during a backoff', async () => {
  const controller = new AbortController();
  controller.abort();
  await rejectsWith(
    fetchAllTiers(fakeExchange(universe(5)).requestPage, options({ signal: controller.signal })),
    'ABORTED',
  );

  const during = new AbortController();
  const requestPage = async () => {
    throw rateLimited(50);
  };
  const pending = fetchAllTiers(requestPage, { ...options(), sleep: undefined, signal: during.signal });
  setImmediate(() => during.abort());
  await rejectsWith(pending, 'ABORTED');
});

test('100,000 tiers in pages of 1000 are paged and validated quickly', async (t) => {
  const list = universe(100_000);
  // CPU time, best of three: the machine is shared with other test files, and the question is what
  // the code costs, not how busy the CPU happened to be.
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const started = process.cpuUsage();
    const result = await fetchAllTiers(fakeExchange(list).requestPage, options());
    const used = process.cpuUsage(started);
    best = Math.min(best, (used.user + used.system) / 1000);
    assert.equal(result.tiers.length, 100_000);
    assert.equal(result.pages, 102);
  }
  t.diagnostic(`paging 100,000 tiers took ${best.toFixed(0)} ms of CPU (best of 3)`);
  // The budget is 0.5 s end to end including the socket; the paging share must be a fraction.
  assert.ok(best < 300, `paging took ${best.toFixed(0)} ms of CPU`);
});

test('TIERWATCH_MAX_TIERS bounds what one pass holds, whatever the page sizes: TIER_LIMIT_REACHED', async () => {
  // An endless list served in pages five times larger than asked: the bound is on tiers held, not on pages.
  const endless = {
    requestPage: async (_limit: number, offset: number) =>
      Array.from({ length: 50 }, (_, i) => row(`E${offset + i}-USD`, 1)),
  };
  await assert.rejects(
    fetchAllTiers(endless.requestPage, options({ pageSize: 10, maxTiers: 120 })),
    (error: unknown) => {
      assert.ok(error instanceof TierwatchError);
      assert.equal(error.code, 'TIER_LIMIT_REACHED');
      assert.match(error.message, /more than 120 tiers \(TIERWATCH_MAX_TIERS\)/);
      return true;
    },
  );
});

test('a page larger than asked is kept, with one warning per pass; the list comes back whole and in order', async () => {
  const list = universe(95);
  const exchange = fakeExchange(list);
  const warnings: unknown[] = [];
  const logger = { warn: (fields: unknown) => warnings.push(fields), debug: () => undefined } as unknown as Logger;
  // The fake ignores `limit` for the first page only.
  let first = true;
  const result = await fetchAllTiers(
    async (limit, offset) => {
      const rows = first ? list.slice(offset, offset + 40) : await exchange.requestPage(limit, offset);
      first = false;
      return rows;
    },
    options({ pageSize: 10, logger }),
  );
  assert.deepEqual(
    result.tiers.map((tier) => tier.exchange_id),
    list.map((r) => r.id),
  );
  assert.equal(warnings.length, 1);
});

test('a restarted pass awaits onRestart first (the caller moves to a fresh connection there)', async () => {
  const list = universe(30);
  const restarts: string[] = [];
  let calls = 0;
  // The second request gets a stale answer (the first page again): the overlap check sees it.
  const result = await fetchAllTiers(
    async (limit, offset) => {
      calls++;
      if (calls === 2) return list.slice(0, 10);
      return list.slice(offset, offset + Math.min(limit, 10));
    },
    options({ pageSize: 10, onRestart: async (reason) => void restarts.push(reason) }),
  );
  assert.equal(restarts.length, 1);
  assert.equal(result.tiers.length, 30);
});
