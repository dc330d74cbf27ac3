/**
 * Prometheus metrics of the daemon, fed from each finished sweep. prom-client writes the
 * exposition format; this module only decides what is counted.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeadReason, DeliveryCounters } from '../alerts/deliver.ts';
import type { SweepResult } from './sweep.ts';

export class SweepMetrics implements DeliveryCounters {
  readonly registry = new Registry();
  readonly #runs = new Counter({ name: 'tierwatch_runs_total', help: 'Runs finished, by account and status.', labelNames: ['account', 'status'] as const, registers: [this.registry] });
  readonly #lastSuccess = new Gauge({ name: 'tierwatch_last_success_timestamp_seconds', help: 'observed_at of the last successful sweep, Unix seconds.', labelNames: ['account'] as const, registers: [this.registry] });
  readonly #duration = new Histogram({
    name: 'tierwatch_sweep_duration_seconds',
    help: 'Wall time of a sweep, connect to commit (or to failure).',
    labelNames: ['account', 'status'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly #changes = new Counter({ name: 'tierwatch_changes_total', help: 'Tier changes recorded, by account and kind (not the baseline: an account\'s first sweep).', labelNames: ['account', 'change'] as const, registers: [this.registry] });
  readonly #tiers = new Gauge({ name: 'tierwatch_tiers', help: 'Tiers in the last successful sweep.', labelNames: ['account'] as const, registers: [this.registry] });

  readonly #alertAttempts = new Counter({ name: 'tierwatch_alert_deliveries_total', help: 'Webhook delivery attempts, by result (delivered, failed).', labelNames: ['result'] as const, registers: [this.registry] });
  readonly #alertsPending = new Gauge({ name: 'tierwatch_alerts_pending', help: 'Webhook notifications waiting in the outbox.', registers: [this.registry] });
  readonly #alertsDead = new Gauge({ name: 'tierwatch_alerts_dead', help: 'Webhook notifications given up (status dead), waiting for `tierwatch alerts retry|drop`.', registers: [this.registry] });
  readonly #alertsDeadTotal = new Counter({ name: 'tierwatch_alerts_dead_total', help: 'Webhook notifications given up, by reason (rejected, attempts, age).', labelNames: ['reason'] as const, registers: [this.registry] });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'tierwatch_' });
  }

  /** Seeds the last-success gauge from the ledger, so a restart does not look like a gap. */
  seedLastSuccess(accountId: string, observedAt: string | null): void {
    if (observedAt !== null) this.#lastSuccess.set({ account: accountId }, Date.parse(observedAt) / 1000);
  }

  deliveryAttempt(result: 'delivered' | 'failed'): void {
    this.#alertAttempts.inc({ result });
  }

  pendingNotifications(count: number): void {
    this.#alertsPending.set(count);
  }

  deadNotifications(count: number): void {
    this.#alertsDead.set(count);
  }

  notificationDead(reason: DeadReason): void {
    this.#alertsDeadTotal.inc({ reason });
  }

  record(result: SweepResult): void {
    const account = result.accountId;
    const status = result.ok ? 'ok' : result.error.code === 'ABORTED' ? 'aborted' : 'failed';
    this.#runs.inc({ account, status });
    this.#duration.observe({ account, status }, result.durationMs / 1000);
    if (!result.ok) return;
    this.#lastSuccess.set({ account }, result.observedAt.getTime() / 1000);
    this.#tiers.set({ account }, result.tiers);
    // The baseline (an account's first sweep: every tier `added`) is not news and is not counted.
    if (result.baseline) return;
    for (const change of result.changes) this.#changes.inc({ account, change: change.change });
  }
}
