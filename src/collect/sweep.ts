/**
 * One sweep of one account: connect → authenticate → page every tier → validate → one transaction.
 * Each sweep is its own run with its own ledger row, failed ones too. Nothing reaches the tier
 * history unless every page arrived and every row was valid: the store commits or writes nothing.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { resolveCredentials, type Config } from '../config.ts';
import { coerceError, TierwatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { openSession, type QfexClientOptions, type QfexSession } from '../qfex/client.ts';
import { fetchAllTiers, type PagedTiers } from '../qfex/paginate.ts';
import type { ChangeRecord, HistoryStore } from '../store/history-store.ts';
import { crashPoint } from './crash-points.ts';

export interface SweepDeps {
  store: HistoryStore;
  logger: Logger;
  /** Injected so tests can reach a simulator with a fake resolver or clock. */
  openSession?: (options: QfexClientOptions) => Promise<QfexSession>;
  lookup?: QfexClientOptions['lookup'];
  now?: () => Date;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export type SweepResult =
  | { ok: true; runId: number; accountId: string; durationMs: number; observedAt: Date; pages: number; tiers: number; changes: ChangeRecord[]; baseline: boolean }
  | { ok: false; runId: number; accountId: string; durationMs: number; error: TierwatchError };

const realSleep = (ms: number, signal?: AbortSignal) =>
  delay(ms, undefined, signal === undefined ? undefined : { signal }).then(
    () => undefined,
    () => {
      throw new TierwatchError('ABORTED', 'The sweep was stopped by a shutdown signal.');
    },
  );

/** Exponential backoff with full jitter, capped. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

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
 * Sweeps one account and records the run. Never throws for a failed sweep: the failure is in the
 * result and in the ledger. Throws only when the ledger itself cannot be written.
 */
export async function sweepAccount(config: Config, accountId: string, deps: SweepDeps, signal?: AbortSignal): Promise<SweepResult> {
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? realSleep;
  const connect = deps.openSession ?? openSession;
  const store = deps.store;

  store.bindEndpoint(config.endpoint);
  const runId = store.startRun({ accountId, endpoint: config.endpoint, publicKey: config.publicKey, startedAt: now() });
  const startedMs = performance.now();
  const log = deps.logger.child({ runId, account: accountId });
  log.debug('sweep started');
  let pagesSeen = 0;

  try {
    const paged = await pageWithRetries();
    throwIfAborted(signal);
    const outcome = store.commitSweep(runId, {
      accountId,
      observedAt: paged.observedAt,
      finishedAt: now(),
      tiers: paged.tiers,
      pages: paged.pages,
      maxRemovalRatio: config.maxRemovalRatio,
    });
    crashPoint('after-commit');
    log.info(
      { pages: paged.pages, tiers: paged.tiers.length, added: outcome.added, removed: outcome.removed, changed: outcome.changed, observedAt: paged.observedAt.toISOString() },
      outcome.changes.length === 0 ? 'sweep ok, no changes' : `sweep ok, ${outcome.changes.length} change(s)`,
    );
    const durationMs = performance.now() - startedMs;
    // Housekeeping after the sweep, not part of it: copy the sweep's WAL into the database file now,
    // while nothing waits, rather than inside a later COMMIT (see WAL_AUTOCHECKPOINT_PAGES in db.ts).
    const checkpoint = store.checkpoint();
    if (checkpoint?.busy) log.debug({ walFrames: checkpoint.walFrames, checkpointed: checkpoint.checkpointedFrames }, 'WAL checkpoint partial: a reader holds older frames');
    return { ok: true, runId, accountId, durationMs, observedAt: paged.observedAt, pages: paged.pages, tiers: paged.tiers.length, changes: outcome.changes, baseline: outcome.baseline };
  } catch (thrown) {
    const error = coerceError(thrown);
    const status = error.code === 'ABORTED' ? 'aborted' : 'failed';
    store.failRun(runId, { status, code: error.code, message: error.message, pages: pagesSeen, finishedAt: now() });
    log[status === 'aborted' ? 'warn' : 'error']({ code: error.code, pages: pagesSeen, err: error }, `sweep ${status}: ${error.message}`);
    return { ok: false, runId, accountId, durationMs: performance.now() - startedMs, error };
  }

  async function pageWithRetries(): Promise<PagedTiers> {
    for (let attempt = 0; ; attempt += 1) {
      throwIfAborted(signal);
      try {
        return await pageOnce();
      } catch (thrown) {
        const error = coerceError(thrown);
        if (!worthAFreshConnection(error) || attempt >= config.sweepRetries || signal?.aborted) throw error;
        const wait = backoffDelay(attempt, config.backoff.baseMs, config.backoff.maxMs);
        log.warn({ code: error.code, attempt: attempt + 1, retryInMs: wait }, `sweep attempt failed, retrying on a fresh connection: ${error.message}`);
        await sleep(wait, signal);
      }
    }
  }

  async function pageOnce(): Promise<PagedTiers> {
    // Secrets are read for every connection, so a rotated *_FILE takes effect at once.
    const credentials = resolveCredentials(config);
    const session = await connect({
      url: config.wsUrl,
      credentials,
      ...(accountId === 'primary' ? {} : { accountId }),
      ...(config.ca === null ? {} : { ca: config.ca }),
      timeouts: config.timeouts,
      ...(signal === undefined ? {} : { signal }),
      ...(deps.lookup === undefined ? {} : { lookup: deps.lookup }),
      logger: log,
    });
    try {
      return await fetchAllTiers(
        async (limit, offset) => {
          const rows = await session.requestLeveragePage(limit, offset);
          pagesSeen += 1;
          crashPoint('between-pages');
          return rows;
        },
        {
          pageSize: config.pageSize,
          maxPages: config.maxPages,
          maxShiftRetries: config.shiftRetries,
          retry: { attempts: config.pageRetries, baseDelayMs: config.backoff.baseMs, maxDelayMs: config.backoff.maxMs },
          ...(signal === undefined ? {} : { signal }),
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
