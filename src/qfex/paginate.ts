/**
 * The sweep's paging logic: pages `get_available_leverage_levels` through a request function until
 * it holds every tier, or fails loudly. No sockets here; the request function is a QfexSession's
 * requestLeveragePage in production and an in-memory fake in tests.
 *
 * Why it pages the way it does (issue 2 §3, issue 5 "pagination"):
 * - The maximum page size is undocumented, so a short page is not the end: the offset advances by
 *   the rows received and only a page bringing no new rows ends the sweep.
 * - Each page after the first overlaps the previous one by one row (offset = rows so far − 1). A
 *   row inserted before the offset shows up as a changed overlap or a duplicate (symbol, leverage);
 *   a row deleted before the offset shows up as a changed or missing overlap. Either way the list
 *   shifted under the pager and the sweep restarts from offset 0.
 * - The overlap is only trusted once a page has proved the server returns at least two rows: with a
 *   page cap of one, a page holding only the overlap row would be indistinguishable from the end.
 * - A restart may mean the session itself is out of step (a stale answer taken for the next one):
 *   `onRestart` lets the caller continue on a fresh connection.
 * - What is held is bounded, not how many pages it took: past `maxTiers` rows the sweep fails with
 *   TIER_LIMIT_REACHED, whatever the page sizes. A page larger than asked is kept (it is still
 *   data) with a warning. Only validated tiers are held, never the raw pages.
 */
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { backoffDelay } from '../backoff.ts';
import { TierwatchError, isTierwatchError } from '../errors.ts';
import type { Tier } from '../history/tier.ts';
import type { Logger } from '../log.ts';
import { validateTierRow } from './protocol.ts';

export interface PageOptions {
  /** The `limit` asked for on each page; the server may return fewer. */
  pageSize: number;
  /** Requests in one pass beyond which the sweep fails with PAGE_LIMIT_REACHED. */
  maxPages: number;
  /** Tiers held beyond which the sweep fails with TIER_LIMIT_REACHED. */
  maxTiers?: number;
  /** Restarts from offset 0 after the list shifted, before PAGINATION_INCONSISTENT. */
  maxShiftRetries: number;
  /** Awaited before each restarted pass: the caller may replace the connection here. */
  onRestart?: (reason: string) => Promise<void>;
  /**
   * For RateLimited/ServerError answers to one page: `attempts` is how many times that page is
   * retried after the first try (0 = never), with exponential backoff from baseDelayMs, full
   * jitter on the upper half, every delay (a retry-after hint included) capped at maxDelayMs.
   */
  retry: { attempts: number; baseDelayMs: number; maxDelayMs: number };
  signal?: AbortSignal;
  logger?: Logger;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => Date;
  /** Uniform [0, 1) source for the jitter; Math.random by default. */
  random?: () => number;
}

export interface PagedTiers {
  tiers: Tier[];
  /** Requests of the pass that succeeded, the final page (no new rows) included. */
  pages: number;
  /** Every request sent, retries and restarted passes included. */
  requests: number;
  /** The instant the last page arrived. */
  observedAt: Date;
}

type RequestPage = (limit: number, offset: number) => Promise<unknown[]>;

/** Thrown inside a pass when the list moved; caught by fetchAllTiers to restart. */
class ListShifted extends Error {}

const RETRIED_CODES = new Set(['QFEX_RATE_LIMITED', 'QFEX_SERVER_ERROR']);

async function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  await sleepTimer(ms, undefined, signal === undefined ? undefined : { signal });
}

function abortedError(cause?: unknown): TierwatchError {
  return new TierwatchError('ABORTED', 'the sweep was stopped while paging', cause === undefined ? {} : { cause });
}

export interface RefusalRetryOptions {
  retry: PageOptions['retry'];
  signal?: AbortSignal | undefined;
  logger?: Logger | undefined;
  sleep?: PageOptions['sleep'];
  random?: (() => number) | undefined;
  /** Fields of the warning logged before each retry (what was refused). */
  context?: Record<string, unknown>;
}

/**
 * Calls `attempt` until it resolves, retrying RateLimited/ServerError answers (QFEX_RATE_LIMITED,
 * QFEX_SERVER_ERROR) `retry.attempts` times with backoff: exponential from baseDelayMs with jitter
 * on the upper half, a retry-after hint honoured, every delay capped at maxDelayMs. Anything else
 * is thrown at once; ABORTED when `signal` stops a wait. Used for a page and for the auth answer.
 */
export async function retryRefusals<T>(attempt: () => Promise<T>, options: RefusalRetryOptions): Promise<T> {
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const { signal, logger } = options;
  for (let retry = 0; ; retry++) {
    if (signal?.aborted) throw abortedError(signal.reason);
    try {
      return await attempt();
    } catch (error) {
      if (!isTierwatchError(error) || !RETRIED_CODES.has(error.code) || retry >= options.retry.attempts) throw error;
      const hint = typeof error.details?.retryAfterMs === 'number' ? error.details.retryAfterMs : 0;
      const delay = backoffDelay(retry, {
        baseMs: options.retry.baseDelayMs,
        maxMs: options.retry.maxDelayMs,
        random,
        hintMs: hint,
        cap: 'after-jitter',
      });
      logger?.warn(
        { code: error.code, ...options.context, retry: retry + 1, delayMs: delay },
        'request refused by the exchange; retrying',
      );
      try {
        await sleep(delay, signal);
      } catch (sleepError) {
        throw abortedError(sleepError);
      }
    }
  }
}

/**
 * Reads every tier through `requestPage`, validating each row. Resolves with the complete list, or
 * throws a TierwatchError: ROW_INVALID (one bad row fails the sweep), EMPTY_SWEEP,
 * PAGE_LIMIT_REACHED, TIER_LIMIT_REACHED, PAGINATION_INCONSISTENT (shifted on every pass),
 * ABORTED, or whatever `requestPage` or `onRestart` threw (RateLimited/ServerError after their
 * retries). Never returns a partial list.
 */
export async function fetchAllTiers(requestPage: RequestPage, options: PageOptions): Promise<PagedTiers> {
  if (!Number.isInteger(options.pageSize) || options.pageSize < 1) {
    throw new TierwatchError('CONFIG_INVALID', `page size must be a positive integer, got ${options.pageSize}`);
  }
  const now = options.now ?? (() => new Date());
  const { signal, logger } = options;
  const maxTiers = options.maxTiers ?? Infinity;
  let requests = 0;
  let warnedOversized = false;

  const request = (limit: number, offset: number): Promise<unknown[]> =>
    retryRefusals(
      () => {
        requests++;
        return requestPage(limit, offset);
      },
      { retry: options.retry, signal, logger, sleep: options.sleep, random: options.random, context: { offset } },
    );

  const pass = async (): Promise<PagedTiers> => {
    const tiers = new HeldTiers();
    const seen = new SeenKeys();
    const where = { offset: 0 };
    let largestPage = 0;
    for (let pages = 1; ; pages++) {
      const overlap = tiers.length > 0 && largestPage >= 2;
      const offset = overlap ? tiers.length - 1 : tiers.length;
      const rows = await request(options.pageSize, offset);
      const arrivedAt = now();
      if (rows.length > largestPage) largestPage = rows.length;
      if (rows.length > options.pageSize && !warnedOversized) {
        // Against the documented contract, but still data: the tier bound keeps it in check.
        warnedOversized = true;
        logger?.warn(
          { offset, asked: options.pageSize, rows: rows.length },
          'the exchange sent more rows than the page size asked for; they are kept (logged once per sweep)',
        );
      }
      let start = 0;
      if (overlap) {
        if (rows.length === 0) throw new ListShifted(`the overlap row at offset ${offset} is gone`);
        const first = validateTierRow(rows[0], { offset });
        const previous = tiers.at(tiers.length - 1);
        if (!sameTier(first, previous)) {
          throw new ListShifted(
            `offset ${offset} holds ${first.symbol} ${first.leverage}, the previous page ended with ${previous.symbol} ${previous.leverage}`,
          );
        }
        start = 1;
      }
      logger?.debug({ offset, rows: rows.length, newRows: rows.length - start }, 'leverage page');
      if (rows.length <= start) {
        if (tiers.length === 0) {
          throw new TierwatchError('EMPTY_SWEEP', 'the exchange returned no leverage tiers at all');
        }
        return { tiers: tiers.toTiers(), pages, requests, observedAt: arrivedAt };
      }
      for (let index = start; index < rows.length; index++) {
        where.offset = offset + index; // one `where` object per pass, not one per row
        const tier = validateTierRow(rows[index], where);
        if (!seen.add(tier.symbol, tier.leverage)) {
          throw new ListShifted(`${tier.symbol} ${tier.leverage} came twice (offset ${offset + index})`);
        }
        if (tiers.length >= maxTiers) {
          throw new TierwatchError(
            'TIER_LIMIT_REACHED',
            `the exchange listed more than ${maxTiers} tiers (TIERWATCH_MAX_TIERS) without an end; raise TIERWATCH_MAX_TIERS if it really lists that many`,
            { details: { pages, tiers: tiers.length } },
          );
        }
        tiers.push(tier);
      }
      if (pages >= options.maxPages) {
        throw new TierwatchError(
          'PAGE_LIMIT_REACHED',
          `the sweep read ${options.maxPages} pages (${tiers.length} tiers) without reaching an empty page; raise TIERWATCH_MAX_PAGES if the exchange really lists that many tiers`,
          { details: { pages, tiers: tiers.length } },
        );
      }
    }
  };

  for (let restart = 0; ; restart++) {
    try {
      const result = await pass();
      logger?.debug({ pages: result.pages, requests: result.requests, tiers: result.tiers.length }, 'sweep paged');
      return result;
    } catch (error) {
      if (!(error instanceof ListShifted)) throw error;
      if (restart >= options.maxShiftRetries) {
        throw new TierwatchError(
          'PAGINATION_INCONSISTENT',
          `the tier list shifted while it was being paged, on ${restart + 1} passes (last: ${error.message})`,
          { cause: error, details: { passes: restart + 1 } },
        );
      }
      logger?.warn(
        { reason: error.message, restart: restart + 1 },
        'tier list shifted during paging; restarting from offset 0',
      );
      await options.onRestart?.(error.message);
    }
  }
}

/**
 * The tiers of one pass, held column by column: no object per tier while paging (numbers unboxed
 * in double arrays, one string per symbol shared by its tiers), about half the memory of a Tier
 * array. Tier objects are made once, for the complete list, by toTiers().
 */
class HeldTiers {
  readonly #symbol: string[] = [];
  readonly #leverage: string[] = [];
  readonly #exchangeId: Array<string | null> = [];
  readonly #initial: number[] = [];
  readonly #maintenance: number[] = [];
  readonly #notional: number[] = [];

  get length(): number {
    return this.#symbol.length;
  }

  push(tier: Tier): void {
    // The exchange lists a symbol's tiers together: they share the first one's string.
    const previous = this.#symbol[this.#symbol.length - 1];
    this.#symbol.push(previous === tier.symbol ? previous : tier.symbol);
    this.#leverage.push(tier.leverage);
    this.#exchangeId.push(tier.exchange_id);
    this.#initial.push(tier.initial_margin);
    this.#maintenance.push(tier.maintenance_margin);
    this.#notional.push(tier.max_notional);
  }

  at(index: number): Tier {
    return {
      symbol: this.#symbol[index]!,
      leverage: this.#leverage[index]!,
      exchange_id: this.#exchangeId[index]!,
      initial_margin: this.#initial[index]!,
      maintenance_margin: this.#maintenance[index]!,
      max_notional: this.#notional[index]!,
    };
  }

  toTiers(): Tier[] {
    const tiers = new Array<Tier>(this.length);
    for (let index = 0; index < tiers.length; index++) tiers[index] = this.at(index);
    return tiers;
  }
}

/**
 * The (symbol, leverage) pairs of one pass. Per symbol its one leverage, or a short array: an
 * exchange lists a handful of leverages per symbol, and scanning a few strings is several times
 * cheaper than building and hashing a combined key per row (this runs for every tier of every
 * sweep). A symbol with very many leverages switches to a Set so the cost stays linear.
 */
class SeenKeys {
  readonly #bySymbol = new Map<string, string | string[] | Set<string>>();

  /** Records the pair; false when it was already there. */
  add(symbol: string, leverage: string): boolean {
    const known = this.#bySymbol.get(symbol);
    if (known === undefined) {
      this.#bySymbol.set(symbol, leverage);
      return true;
    }
    if (typeof known === 'string') {
      if (known === leverage) return false;
      this.#bySymbol.set(symbol, [known, leverage]);
      return true;
    }
    if (Array.isArray(known)) {
      if (known.includes(leverage)) return false;
      if (known.length < 32) known.push(leverage);
      else this.#bySymbol.set(symbol, new Set([...known, leverage]));
      return true;
    }
    if (known.has(leverage)) return false;
    known.add(leverage);
    return true;
  }
}

/** Same identity and same tracked values: the overlap row read twice must be this. */
function sameTier(a: Tier, b: Tier): boolean {
  return (
    a.symbol === b.symbol &&
    a.leverage === b.leverage &&
    Object.is(a.initial_margin, b.initial_margin) &&
    Object.is(a.maintenance_margin, b.maintenance_margin) &&
    Object.is(a.max_notional, b.max_notional)
  );
}
