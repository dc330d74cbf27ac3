/**
 * One sweep of one account: connect → authenticate → page every tier → validate → one transaction.
 * Each sweep is its own run with its own ledger row, failed ones too. Nothing reaches the tier
 * history unless every page arrived and every row was valid: the store commits or writes nothing.
 *
 * Bounded in time as in memory: the whole sweep, retries and fresh connections included, has
 * `config.sweepTimeoutMs` (SWEEP_TIMEOUT), so a server that drips rows cannot hold the daemon's
 * schedule; the tiers held are bounded by `config.maxTiers` and each frame by `config.maxFrameBytes`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { backoffDelay } from '../backoff.ts';
import { resolveCredentials, type Config } from '../config.ts';
import { coerceError, TierwatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { openSession, type QfexClientOptions, type QfexSession } from '../qfex/client.ts';
import { fetchAllTiers, retryRefusals, type PagedTiers } from '../qfex/paginate.ts';
import type { FrameTypeLabel } from '../qfex/protocol.ts';
import type { ChangeRecord } from '../store/history-store.ts';
import type { SweepStore } from '../store/sweep-store.ts';
import { crashPoint } from './crash-points.ts';

export interface SweepDeps {
  /** The SQLite HistoryStore or the Postgres store: the collector awaits both alike. */
  store: SweepStore;
  logger: Logger;
  /** Injected so tests can reach a simulator with a fake resolver or clock. */
  openSession?: (options: QfexClientOptions) => Promise<QfexSession>;
  lookup?: QfexClientOptions['lookup'];
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Frames skipped because they answered nothing we asked, by type, over the sweep's connections. */
export type IgnoredFrames = Partial<Record<FrameTypeLabel, number>>;

export type SweepResult =
  | {
      ok: true;
      runId: number;
      accountId: string;
      durationMs: number;
      observedAt: Date;
      pages: number;
      tiers: number;
      changes: ChangeRecord[];
      ignoredFrames: IgnoredFrames;
      /** An account's first successful sweep: its baseline, not news (not alerted, not counted). */
      baseline: boolean;
    }
  | {
      ok: false;
      runId: number;
      accountId: string;
      durationMs: number;
      error: TierwatchError;
      ignoredFrames: IgnoredFrames;
    };

const realSleep = (ms: number, signal?: AbortSignal) =>
  delay(ms, undefined, signal === undefined ? undefined : { signal }).then(
    () => undefined,
    () => {
      throw new TierwatchError('ABORTED', 'The sweep was stopped by a shutdown signal.');
    },
  );

/**
 * Network failures get a fresh connection. RateLimited and ServerError were already retried page by
 * page with backoff; sweeping again at once would only add load to a struggling exchange.
 */
function worthAFreshConnection(error: TierwatchError): boolean {
  return error.retryable && error.code !== 'QFEX_RATE_LIMITED' && error.code !== 'QFEX_SERVER_ERROR';
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new TierwatchError('ABORTED', 'The sweep was stopped by a shutdown signal.');
}

/**
 * Failures the network makes every day (a refused or dropped connection, a timeout, a busy
 * exchange): a warning with the code, since the daemon simply tries again at the next firing.
 */
const EXPECTED_FAILURES: ReadonlySet<string> = new Set([
  'QFEX_CONNECT',
  'QFEX_TLS',
  'QFEX_TIMEOUT',
  'QFEX_CLOSED',
  'QFEX_RATE_LIMITED',
  'QFEX_SERVER_ERROR',
]);

/**
 * One line per failed sweep, with its code and message once; no stack for a failure tierwatch
 * expects (the stack is logged at debug), the stack for a bug.
 */
function logSweepFailure(log: Logger, status: 'failed' | 'aborted', error: TierwatchError, pages: number): void {
  const level = status === 'aborted' || EXPECTED_FAILURES.has(error.code) ? 'warn' : 'error';
  if (error.code === 'INTERNAL') {
    log.error({ code: error.code, pages, err: error }, `sweep ${status}: ${error.message}`);
    return;
  }
  log[level]({ code: error.code, pages }, `sweep ${status}: ${error.message}`);
  log.debug({ code: error.code, err: error }, 'sweep failure in detail');
}

/**
 * Sweeps one account and records the run. Never throws for a failed sweep: the failure is in the
 * result and in the ledger. Throws only when the ledger itself cannot be written.
 */
export async function sweepAccount(
  config: Config,
  accountId: string,
  deps: SweepDeps,
  outerSignal?: AbortSignal,
): Promise<SweepResult> {
  const now = deps.now ?? (() => new Date());
  // The deadline aborts everything below like a shutdown would; the catch tells the two apart.
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(() => deadline.abort(), config.sweepTimeoutMs);
  deadlineTimer.unref();
  const signal = outerSignal === undefined ? deadline.signal : AbortSignal.any([outerSignal, deadline.signal]);
  const ignoredFrames: IgnoredFrames = {};
  const onIgnoredFrame = (type: FrameTypeLabel) => {
    ignoredFrames[type] = (ignoredFrames[type] ?? 0) + 1;
  };
  const sleep = deps.sleep ?? realSleep;
  const connect = deps.openSession ?? openSession;
  const store = deps.store;

  await store.bindEndpoint(config.endpoint);
  const runId = await store.startRun({
    accountId,
    endpoint: config.endpoint,
    publicKey: config.publicKey,
    startedAt: now(),
  });
  const startedMs = performance.now();
  const log = deps.logger.child({ run_id: runId, account_id: accountId });
  log.debug('sweep started');
  let pagesSeen = 0;

  try {
    const paged = await pageWithRetries();
    throwIfAborted(signal);
    const outcome = await store.commitSweep(runId, {
      accountId,
      observedAt: paged.observedAt,
      finishedAt: now(),
      tiers: paged.tiers,
      pages: paged.pages,
      maxRemovalRatio: config.maxRemovalRatio,
    });
    crashPoint('after-commit');
    log.info(
      {
        pages: paged.pages,
        tiers: paged.tiers.length,
        added: outcome.added,
        removed: outcome.removed,
        changed: outcome.changed,
        observed_at: paged.observedAt.toISOString(),
      },
      outcome.changes.length === 0 ? 'sweep ok, no changes' : `sweep ok, ${outcome.changes.length} change(s)`,
    );
    const durationMs = performance.now() - startedMs;
    // Housekeeping after the sweep, not part of it: copy the sweep's WAL into the database file now,
    // while nothing waits, rather than inside a later COMMIT (see WAL_AUTOCHECKPOINT_PAGES in db.ts).
    const checkpoint = await store.checkpoint();
    if (checkpoint?.busy) {
      log.debug(
        { wal_frames: checkpoint.walFrames, checkpointed: checkpoint.checkpointedFrames },
        'WAL checkpoint partial: a reader holds older frames',
      );
    }
    return {
      ok: true,
      runId,
      accountId,
      durationMs,
      observedAt: paged.observedAt,
      pages: paged.pages,
      tiers: paged.tiers.length,
      changes: outcome.changes,
      ignoredFrames,
      baseline: outcome.baseline,
    };
  } catch (thrown) {
    let error = coerceError(thrown);
    if (deadline.signal.aborted && !outerSignal?.aborted) {
      error = new TierwatchError(
        'SWEEP_TIMEOUT',
        `the sweep did not finish within ${config.sweepTimeoutMs} ms (TIERWATCH_SWEEP_TIMEOUT); it was stopped after ${pagesSeen} page(s) (last: ${error.code})`,
        { cause: error, details: { pages: pagesSeen } },
      );
    }
    const status = error.code === 'ABORTED' ? 'aborted' : 'failed';
    await store.failRun(runId, {
      status,
      code: error.code,
      message: error.message,
      pages: pagesSeen,
      finishedAt: now(),
    });
    logSweepFailure(log, status, error, pagesSeen);
    return { ok: false, runId, accountId, durationMs: performance.now() - startedMs, error, ignoredFrames };
  } finally {
    clearTimeout(deadlineTimer);
  }

  async function pageWithRetries(): Promise<PagedTiers> {
    for (let attempt = 0; ; attempt += 1) {
      throwIfAborted(signal);
      try {
        return await pageOnce();
      } catch (thrown) {
        const error = coerceError(thrown);
        if (!worthAFreshConnection(error) || attempt >= config.sweepRetries || signal?.aborted) throw error;
        const wait = backoffDelay(attempt, { baseMs: config.backoff.baseMs, maxMs: config.backoff.maxMs });
        log.warn(
          { code: error.code, attempt: attempt + 1, retry_in_ms: wait },
          `sweep attempt failed, retrying on a fresh connection: ${error.message}`,
        );
        await sleep(wait, signal);
      }
    }
  }

  /**
   * Connects and authenticates; an auth answered RateLimited/ServerError is retried like a page
   * (same backoff, same TIERWATCH_PAGE_RETRIES), each time on a fresh connection and nonce.
   */
  function openOne(): Promise<QfexSession> {
    return retryRefusals(
      () =>
        connect({
          url: config.wsUrl,
          // Secrets are read for every connection, so a rotated *_FILE takes effect at once.
          credentials: resolveCredentials(config),
          ...(accountId === 'primary' ? {} : { accountId }),
          ...(config.ca === null ? {} : { ca: config.ca }),
          timeouts: config.timeouts,
          maxPayloadBytes: config.maxFrameBytes,
          signal,
          ...(deps.lookup === undefined ? {} : { lookup: deps.lookup }),
          logger: log,
          onIgnoredFrame,
        }),
      {
        retry: { attempts: config.pageRetries, baseDelayMs: config.backoff.baseMs, maxDelayMs: config.backoff.maxMs },
        signal,
        logger: log,
        sleep,
        context: { phase: 'auth' },
      },
    );
  }

  async function pageOnce(): Promise<PagedTiers> {
    let session = await openOne();
    /** Replaces the connection when it may be out of step; paging continues where it was. */
    const freshSession = async (why: string) => {
      session.close();
      log.info({ why }, 'continuing on a fresh connection');
      session = await openOne();
    };
    try {
      return await fetchAllTiers(
        async (limit, offset) => {
          if (session.desynchronised) await freshSession('a stale answer arrived on the previous connection');
          const rows = await session.requestLeveragePage(limit, offset);
          pagesSeen += 1;
          crashPoint('between-pages');
          return rows;
        },
        {
          pageSize: config.pageSize,
          maxPages: config.maxPages,
          maxTiers: config.maxTiers,
          maxShiftRetries: config.shiftRetries,
          // A shift may be a stale answer taken for the next one: never restart on the same socket.
          onRestart: () => freshSession('the tier list shifted, or the session fell out of step'),
          retry: { attempts: config.pageRetries, baseDelayMs: config.backoff.baseMs, maxDelayMs: config.backoff.maxMs },
          signal,
          logger: log,
          sleep,
          now,
        },
      );
    } finally {
      session.close();
    }
  }
}

/** Sweeps every configured account in turn; each is its own run. */
export async function sweepAll(config: Config, deps: SweepDeps, signal?: AbortSignal): Promise<SweepResult[]> {
  const results: SweepResult[] = [];
  for (const accountId of config.accountIds) {
    if (signal?.aborted) break;
    results.push(await sweepAccount(config, accountId, deps, signal));
  }
  return results;
}
