/**
 * Webhook alerts on a Postgres history: the same notifications, bodies and delivery as on SQLite
 * (alerting.ts, deliver.ts), with one rule more — only the leader writes and delivers them.
 *
 * - `changes`: written in the sweep's own fenced transaction (PgSweepHook), never by a standby.
 * - `stale` / `recovered`: judged by the leader on the shared history, in one fenced transaction
 *   with the staleness state, so two collectors cannot both announce one transition.
 * - Delivery runs only while this collector leads, on a signal that aborts the moment it stops
 *   leading; every mark is fenced (pg-outbox.ts). A new leader delivers what the old one left
 *   pending, at its election.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { redactUrl, type Config } from '../config.ts';
import { healthMaxAgeMs } from '../collect/health.ts';
import { isTierwatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { StoredSweep } from '../store/history-store-types.ts';
import type { LeaderLease } from '../store/pg/lease.ts';
import type { AlertKind } from '../store/schema.ts';
import { deliveryOptions, type AlertingDeps } from './alerting.ts';
import { deliverQueue } from './deliver.ts';
import { changesNotification, classifiedChanges, renderBody, selectChanges, type Notification } from './payload.ts';
import type { PgOutbox } from './pg-outbox.ts';
import {
  STALENESS_KEY,
  judgeStaleness,
  parseStalenessState,
  staleTransition,
  type StalenessState,
} from './staleness.ts';
import { DeliveryPasses } from './delivery-passes.ts';

export interface PgAlertingDeps extends Pick<AlertingDeps, 'counters' | 'fetch' | 'sleep' | 'random'> {
  outbox: PgOutbox;
  lease: LeaderLease;
  logger: Logger;
  /** While this collector leads: a signal aborted when it stops leading; null otherwise. */
  leadership: () => AbortSignal | null;
  /** Installs (or with null removes) the hook of every later sweep transaction. */
  setSweepHook: (hook: ((client: pg.PoolClient, stored: StoredSweep) => Promise<void>) | null) => void;
  now?: () => Date;
}

export class PgAlerting {
  readonly #config: Config;
  readonly #deps: PgAlertingDeps;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #startedAt: Date;
  readonly #stop = new AbortController();
  readonly #passes = new DeliveryPasses(
    () => this.#passWhileLeading(),
    () => this.#stop.signal.aborted,
  );
  #timer: NodeJS.Timeout | undefined;

  constructor(config: Config, deps: PgAlertingDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'alerts' });
    this.#now = deps.now ?? (() => new Date());
    this.#startedAt = this.#now();
  }

  get enabled(): boolean {
    return this.#config.alerts.webhookUrls.length > 0;
  }

  /** Installs the sweep hook and, with `checkEveryMs`, the staleness timer. Does nothing without webhooks. */
  start(options: { checkEveryMs?: number } = {}): void {
    if (!this.enabled) return;
    this.#deps.setSweepHook((client, stored) => this.#enqueueChanges(client, stored));
    if (options.checkEveryMs !== undefined) {
      this.#timer = setInterval(() => void this.checkStaleness(), options.checkEveryMs);
      this.#timer.unref();
    }
  }

  /** After every run, and at an election: staleness, then delivery. Never throws. */
  afterRun(): void {
    if (!this.enabled) return;
    void this.checkStaleness().finally(() => this.kick());
  }

  /** Starts a delivery pass while leading (or asks for another after the running one). Never throws. */
  kick(): void {
    if (this.enabled) this.#passes.request();
  }

  /** One delivery pass, awaited (a one-shot collect, after its sweeps). */
  async flush(): Promise<void> {
    if (!this.enabled) return;
    if (!this.#passes.running) this.kick();
    await this.#passes.idle();
  }

  /** Judges staleness on the shared history, as the leader, in one fenced transaction. Never throws. */
  async checkStaleness(): Promise<'stale' | 'recovered' | null> {
    if (!this.enabled || this.#deps.leadership() === null) return null;
    const now = this.#now();
    const maxAgeMs = healthMaxAgeMs(this.#config);
    try {
      const transition = await this.#deps.lease.writeTransaction(async (client) => {
        const accounts = await Promise.all(
          this.#config.accountIds.map(async (accountId) => {
            const row = await client.query<{ at: string | null }>(
              `SELECT max(observed_at) AS at FROM runs WHERE status = 'ok' AND account_id = $1`,
              [accountId],
            );
            return { accountId, lastSuccessAt: row.rows[0]?.at ?? null };
          }),
        );
        const verdict = judgeStaleness(accounts, maxAgeMs, now, this.#startedAt);
        const previous = parseStalenessState(await this.#deps.outbox.getStateIn(client, STALENESS_KEY));
        const next = staleTransition(previous, verdict);
        if (next === null) return null;
        const at = now.toISOString();
        const id = randomUUID();
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
        await this.#deps.outbox.putStateIn(client, STALENESS_KEY, JSON.stringify(state), now);
        await this.#write(client, notification, null, at);
        return { next, reason: verdict.stale ? verdict.reason : undefined };
      });
      if (transition === null) return null;
      this.#log[transition.next === 'stale' ? 'error' : 'info'](
        { transition: transition.next, ...(transition.reason === undefined ? {} : { reason: transition.reason }) },
        transition.next === 'stale'
          ? 'collection is stale: stale notification queued'
          : 'collection recovered: recovered notification queued',
      );
      this.kick();
      return transition.next;
    } catch (error) {
      this.#logFailure('staleness check', error);
      return null;
    }
  }

  /** Stops the timer and delivery (what is in flight stays pending), and waits for the pass. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#deps.setSweepHook(null);
    this.#stop.abort(new Error('tierwatch is shutting down'));
    await this.#passes.idle();
  }

  async #enqueueChanges(client: pg.PoolClient, stored: StoredSweep): Promise<void> {
    if (stored.baseline) return; // an account's first sweep lists every tier: a baseline, not news
    const { alerts } = this.#config;
    const selected = selectChanges(classifiedChanges(stored.changes), { symbols: alerts.symbols, only: alerts.only });
    const notification = changesNotification(randomUUID(), stored, selected);
    if (notification === null) return;
    await this.#write(client, notification, stored.runId, this.#now().toISOString());
  }

  async #write(
    client: pg.PoolClient,
    notification: Notification,
    runId: number | null,
    createdAt: string,
  ): Promise<void> {
    const { alerts } = this.#config;
    const body = renderBody(notification, alerts.format);
    const kind: AlertKind = notification.type;
    await this.#deps.outbox.enqueueIn(
      client,
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
  }

  async #passWhileLeading(): Promise<void> {
    const leading = this.#deps.leadership();
    if (leading === null) return; // a standby delivers nothing: the leader does
    try {
      await this.#onePass(AbortSignal.any([this.#stop.signal, leading]));
    } catch (error) {
      this.#logFailure('webhook delivery pass', error);
    }
  }

  async #onePass(signal: AbortSignal): Promise<void> {
    const { alerts } = this.#config;
    const options = deliveryOptions(this.#config, this.#log, this.#now, this.#deps);
    const results = await Promise.all(
      alerts.webhookUrls.map((url) => deliverQueue(this.#deps.outbox, url, options, signal)),
    );
    const pending = await this.#deps.outbox.pendingCount();
    this.#deps.counters?.pendingNotifications(pending);
    this.#deps.counters?.deadNotifications(await this.#deps.outbox.deadCount());
    if (results.includes('blocked')) {
      this.#log.warn(
        { pending, blocked: alerts.webhookUrls.filter((_, index) => results[index] === 'blocked').map(redactUrl) },
        `${pending} webhook notification(s) still pending; they are retried after the next run`,
      );
    }
  }

  #logFailure(what: string, error: unknown): void {
    if (isTierwatchError(error, 'DB_LEADERSHIP_LOST')) {
      this.#log.info({ code: error.code }, `${what} stopped: this collector no longer leads; the leader goes on`);
      return;
    }
    this.#log.error({ err: error }, `${what} failed; pending notifications stay in the outbox`);
  }
}
