/**
 * The alerting of one daemon: writes notifications to the outbox (changes inside the sweep
 * transaction, staleness transitions in their own), and delivers the outbox in the background.
 *
 * Delivery is detached from collection: it runs on its own AbortSignal, is only ever kicked (never
 * awaited) by the daemon, and catches its own failures. The daemon kicks it after every run and at
 * start-up; `stop()` aborts what is in flight (it stays pending for the next start) and waits.
 */
import { randomUUID } from 'node:crypto';
import { redactUrl, resolveWebhookSecret, type Config } from '../config.ts';
import { accountHealth, healthMaxAgeMs } from '../collect/health.ts';
import type { Logger } from '../log.ts';
import { packageVersion } from '../paths.ts';
import type { StoreDb } from '../store/db.ts';
import type { HistoryStore, StoredSweep } from '../store/history-store.ts';
import type { AlertKind } from '../store/schema.ts';
import { deliverQueue, type DeliveryCounters, type DeliveryOptions } from './deliver.ts';
import { Outbox } from './outbox.ts';
import { changesNotification, classifiedChanges, renderBody, selectChanges, type Notification } from './payload.ts';
import {
  STALENESS_KEY,
  judgeStaleness,
  parseStalenessState,
  staleTransition,
  type StalenessState,
} from './staleness.ts';
import { DeliveryPasses } from './delivery-passes.ts';

export interface AlertingDeps {
  db: StoreDb;
  store: HistoryStore;
  logger: Logger;
  counters?: DeliveryCounters;
  now?: () => Date;
  newId?: () => string;
  fetch?: typeof fetch;
  sleep?: DeliveryOptions['sleep'];
  random?: () => number;
}

/** How notifications are posted, from the configuration: shared by both backends' alerting. */
export function deliveryOptions(
  config: Config,
  logger: Logger,
  now: () => Date,
  deps: Pick<AlertingDeps, 'counters' | 'fetch' | 'sleep' | 'random'> = {},
): DeliveryOptions {
  const { alerts } = config;
  return {
    timeoutMs: alerts.timeoutMs,
    retries: alerts.retries,
    maxAttempts: alerts.maxAttempts,
    maxAgeMs: alerts.maxAgeMs,
    backoff: config.backoff,
    secret: () => resolveWebhookSecret(config),
    userAgent: `tierwatch/${packageVersion()}`,
    logger,
    now,
    ...(deps.counters === undefined ? {} : { counters: deps.counters }),
    ...(deps.fetch === undefined ? {} : { fetch: deps.fetch }),
    ...(deps.sleep === undefined ? {} : { sleep: deps.sleep }),
    ...(deps.random === undefined ? {} : { random: deps.random }),
  };
}

export class Alerting {
  readonly #config: Config;
  readonly #deps: AlertingDeps;
  readonly #outbox: Outbox;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #newId: () => string;
  readonly #startedAt: Date;
  readonly #stop = new AbortController();
  readonly #passes = new DeliveryPasses(
    () => this.#onePassLogged(),
    () => this.#stop.signal.aborted,
  );
  #timer: NodeJS.Timeout | undefined;

  /** Builds the outbox on `deps.db` (writable, the daemon's connection). Starts nothing. */
  constructor(config: Config, deps: AlertingDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#outbox = new Outbox(deps.db);
    this.#log = deps.logger.child({ component: 'alerts' });
    this.#now = deps.now ?? (() => new Date());
    this.#newId = deps.newId ?? randomUUID;
    this.#startedAt = this.#now();
  }

  /** True when at least one webhook URL is configured. */
  get enabled(): boolean {
    return this.#config.alerts.webhookUrls.length > 0;
  }

  /**
   * Installs the sweep hook (so runs write their notifications in their own transaction), kicks a
   * delivery pass for whatever an earlier process left pending (unless `kick: false`, for a caller
   * that makes one pass of its own after sweeping), and, with `checkEveryMs`, checks staleness on a
   * timer. Does nothing when no webhook is configured.
   */
  start(options: { checkEveryMs?: number; kick?: boolean } = {}): void {
    if (!this.enabled) return;
    this.#deps.store.setSweepHook((stored) => this.#enqueueChanges(stored));
    if (options.kick ?? true) this.kick();
    if (options.checkEveryMs !== undefined) {
      this.#timer = setInterval(
        () => this.#safely('staleness check', () => this.checkStaleness()),
        options.checkEveryMs,
      );
      this.#timer.unref();
    }
  }

  /** After every run (ok or not): checks staleness, then kicks delivery. Never throws. */
  afterRun(): void {
    if (!this.enabled) return;
    this.#safely('staleness check', () => this.checkStaleness());
    this.kick();
  }

  /**
   * Starts a delivery pass over every configured URL, or, when one is running, asks for another
   * after it. Returns at once; never throws (a failed pass is logged).
   */
  kick(): void {
    if (this.enabled) this.#passes.request();
  }

  /**
   * One delivery pass over everything pending, awaited: for a one-shot command after its sweeps.
   * A sweep that queued a notification has already scheduled that pass (on the next turn of the
   * event loop); it is joined rather than followed by a second one.
   */
  async flush(): Promise<void> {
    if (!this.enabled) return;
    await new Promise((resolve) => setImmediate(resolve));
    if (!this.#passes.running) this.kick();
    await this.idle();
  }

  /** Resolves when no delivery pass is running (tests, and shutdown). */
  async idle(): Promise<void> {
    await this.#passes.idle();
  }

  /**
   * Judges staleness now and, on a transition, persists the new state and writes one `stale` or
   * `recovered` notification per URL in one transaction, then kicks delivery. Returns the transition.
   */
  checkStaleness(): 'stale' | 'recovered' | null {
    if (!this.enabled) return null;
    const now = this.#now();
    const maxAgeMs = healthMaxAgeMs(this.#config);
    const verdict = judgeStaleness(
      accountHealth(this.#deps.db, this.#config.accountIds),
      maxAgeMs,
      now,
      this.#startedAt,
    );
    const transition = this.#outbox.transaction(() => {
      const previous = parseStalenessState(this.#outbox.getState(STALENESS_KEY));
      const next = staleTransition(previous, verdict);
      if (next === null) return null;
      const id = this.#newId();
      const at = now.toISOString();
      const notification: Notification =
        next === 'stale'
          ? {
              id,
              type: 'stale',
              at,
              last_success_at: verdict.lastSuccessAt,
              threshold_seconds: Math.round(maxAgeMs / 1000),
              reason: verdict.stale ? verdict.reason : '',
            }
          : { id, type: 'recovered', at, last_success_at: verdict.lastSuccessAt!, stale_since: previous!.since };
      const state: StalenessState = { state: next === 'stale' ? 'stale' : 'fresh', since: at };
      this.#outbox.putState(STALENESS_KEY, JSON.stringify(state), now);
      this.#write(notification, null, at);
      return next;
    });
    if (transition !== null) {
      this.#log[transition === 'stale' ? 'error' : 'info'](
        { transition, ...(verdict.stale ? { reason: verdict.reason } : {}) },
        transition === 'stale'
          ? 'collection is stale: stale notification queued'
          : 'collection recovered: recovered notification queued',
      );
      this.kick();
    }
    return transition;
  }

  /** Stops the staleness timer and delivery (what is in flight stays pending), and waits for the pass. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#deps.store.setSweepHook(null);
    this.#stop.abort(new Error('tierwatch is shutting down'));
    await this.idle();
  }

  /** The sweep hook: runs inside the sweep transaction, so it must stay synchronous and quick. */
  #enqueueChanges(stored: StoredSweep): void {
    if (stored.baseline) return; // an account's first sweep lists every tier: a baseline, not news
    const { alerts } = this.#config;
    const selected = selectChanges(classifiedChanges(stored.changes), { symbols: alerts.symbols, only: alerts.only });
    const notification = changesNotification(this.#newId(), stored, selected);
    if (notification === null) return;
    this.#write(notification, stored.runId, this.#now().toISOString());
    // Runs after COMMIT (the transaction is synchronous); a rolled-back sweep leaves nothing to send.
    setImmediate(() => this.kick());
  }

  #write(notification: Notification, runId: number | null, createdAt: string): void {
    const { alerts } = this.#config;
    const body = renderBody(notification, alerts.format);
    const kind: AlertKind = notification.type;
    this.#outbox.enqueue(
      alerts.webhookUrls.map((url) => ({
        notificationId: notification.id,
        kind,
        url,
        format: alerts.format,
        runId,
        body,
      })),
      createdAt,
    );
    this.#deps.counters?.pendingNotifications(this.#outbox.pendingCount());
  }

  async #onePassLogged(): Promise<void> {
    try {
      await this.#onePass();
    } catch (error) {
      this.#log.error({ err: error }, 'webhook delivery pass failed; pending notifications stay in the outbox');
    }
  }

  async #onePass(): Promise<void> {
    const { alerts } = this.#config;
    const options = deliveryOptions(this.#config, this.#log, this.#now, this.#deps);
    const results = await Promise.all(
      alerts.webhookUrls.map((url) => deliverQueue(this.#outbox, url, options, this.#stop.signal)),
    );
    const pending = this.#outbox.pendingCount();
    this.#deps.counters?.pendingNotifications(pending);
    this.#deps.counters?.deadNotifications(this.#outbox.deadCount());
    if (results.includes('blocked')) {
      this.#log.warn(
        { pending, blocked: alerts.webhookUrls.filter((_, index) => results[index] === 'blocked').map(redactUrl) },
        `${pending} webhook notification(s) still pending; they are retried after the next run`,
      );
    }
  }

  #safely(what: string, work: () => void): void {
    try {
      work();
    } catch (error) {
      this.#log.error({ err: error }, `${what} failed`);
    }
  }
}
