/**
 * Prometheus metrics of the daemon, fed from each finished sweep. prom-client writes the
 * exposition format; this module only decides what is counted.
 *
 * Conventions, so stock dashboards and alerts work: the process and Node.js metrics keep their
 * standard names (`process_*`, `nodejs_*`, no prefix); `tierwatch_build_info` is 1 with the version
 * in its labels; and every labelled counter has all its series from the start (each configured
 * account × each status, change kind and error code), so `rate()` and `increase()` see the first
 * failure as a step from 0, not as a series that appears from nowhere.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeadReason, DeliveryCounters } from '../alerts/deliver.ts';
import { ERROR_CODES, type ErrorCode } from '../errors.ts';
import { FRAME_TYPE_LABELS } from '../qfex/protocol.ts';
import type { SweepResult } from './sweep.ts';

/**
 * How a run can end, as the `status` label (the runs table's statuses a finished sweep can have),
 * and the kinds of change. The same lists as store/schema.ts, not imported from it: that module
 * loads drizzle, which the daemon otherwise never needs (a test checks they agree).
 */
export const RUN_OUTCOMES = ['ok', 'failed', 'aborted'] as const;
export const CHANGE_KINDS = ['added', 'removed', 'changed'] as const;
const DELIVERY_RESULTS = ['delivered', 'failed'] as const;
const DEAD_REASONS: readonly DeadReason[] = ['rejected', 'attempts', 'age'];
const UNLINTABLE_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export interface MetricsOptions {
  /** Off in tests that only read tierwatch's own metrics. */
  processMetrics?: boolean;
  /** The configured accounts: their series exist from the start. */
  accountIds?: readonly string[];
  /** The package version, for tierwatch_build_info. */
  version?: string;
}

export class SweepMetrics implements DeliveryCounters {
  readonly registry = new Registry();
  readonly #buildInfo = new Gauge({
    name: 'tierwatch_build_info',
    help: 'Always 1; the labels say which tierwatch and Node.js are running.',
    labelNames: ['version', 'node_version'] as const,
    registers: [this.registry],
  });

  // ---- sweeps
  readonly #runs = new Counter({
    name: 'tierwatch_runs_total',
    help: 'Runs finished, by account and status (ok, failed, aborted).',
    labelNames: ['account', 'status'] as const,
    registers: [this.registry],
  });
  readonly #failures = new Counter({
    name: 'tierwatch_run_failures_total',
    help: "Runs that failed or were aborted, by account and error code (the runs table's error_code).",
    labelNames: ['account', 'code'] as const,
    registers: [this.registry],
  });
  readonly #lastSuccess = new Gauge({
    name: 'tierwatch_last_success_timestamp_seconds',
    help: 'observed_at of the last successful sweep, Unix seconds.',
    labelNames: ['account'] as const,
    registers: [this.registry],
  });
  readonly #duration = new Histogram({
    name: 'tierwatch_sweep_duration_seconds',
    help: 'Wall time of a sweep, connect to commit (or to failure).',
    labelNames: ['account', 'status'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly #changes = new Counter({
    name: 'tierwatch_changes_total',
    help: "Tier changes recorded, by account and kind (not the baseline: an account's first sweep).",
    labelNames: ['account', 'change'] as const,
    registers: [this.registry],
  });
  readonly #tiers = new Gauge({
    name: 'tierwatch_tiers',
    help: 'Tiers in the last successful sweep.',
    labelNames: ['account'] as const,
    registers: [this.registry],
  });
  // The label is a bounded set (known frame types, else `unknown`), never a string from the exchange.
  readonly #ignoredFrames = new Counter({
    name: 'tierwatch_ignored_frames_total',
    help: 'Frames from the exchange skipped because they answered nothing we asked, by frame type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  // ---- webhook alerts
  readonly #alertAttempts = new Counter({
    name: 'tierwatch_alert_deliveries_total',
    help: 'Webhook delivery attempts, by result (delivered, failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly #alertsPending = new Gauge({
    name: 'tierwatch_alerts_pending',
    help: 'Webhook notifications waiting in the outbox.',
    registers: [this.registry],
  });
  readonly #alertsDead = new Gauge({
    name: 'tierwatch_alerts_dead',
    help: 'Webhook notifications given up (status dead), waiting for `tierwatch alerts retry|drop`.',
    registers: [this.registry],
  });
  readonly #alertsDeadTotal = new Counter({
    name: 'tierwatch_alerts_dead_total',
    help: 'Webhook notifications given up, by reason (rejected, attempts, age).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client's three gauges named *_total break the naming rule promtool enforces (only a
      // counter ends in _total); their by-type twins (nodejs_active_handles{type}, …) stay, and
      // sum() over them gives the same number.
      for (const name of UNLINTABLE_DEFAULTS) this.registry.removeSingleMetric(name);
    }
    this.#buildInfo.set({ version: options.version ?? 'unknown', node_version: process.version }, 1);
    for (const account of options.accountIds ?? []) this.#initialiseAccount(account);
    for (const result of DELIVERY_RESULTS) this.#alertAttempts.inc({ result }, 0);
    for (const reason of DEAD_REASONS) this.#alertsDeadTotal.inc({ reason }, 0);
    for (const type of FRAME_TYPE_LABELS) this.#ignoredFrames.inc({ type }, 0);
    this.#alertsDead.set(0);
    this.#alertsPending.set(0);
  }

  /** Every series of an account at 0, so the first failure is an increase a rule can see. */
  #initialiseAccount(account: string): void {
    for (const status of RUN_OUTCOMES) this.#runs.inc({ account, status }, 0);
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) this.#failures.inc({ account, code }, 0);
    for (const change of CHANGE_KINDS) this.#changes.inc({ account, change }, 0);
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
    for (const [type, count] of Object.entries(result.ignoredFrames)) {
      if (count !== undefined && count > 0) this.#ignoredFrames.inc({ type }, count);
    }
    if (!result.ok) {
      this.#failures.inc({ account, code: result.error.code });
      return;
    }
    this.#lastSuccess.set({ account }, result.observedAt.getTime() / 1000);
    this.#tiers.set({ account }, result.tiers);
    // The baseline (an account's first sweep: every tier `added`) is not news and is not counted.
    if (result.baseline) return;
    for (const change of result.changes) this.#changes.inc({ account, change: change.change });
  }
}
