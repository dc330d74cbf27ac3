/**
 * What a webhook receives: the notification documents (JSON) and their Slack-style `{"text": …}`
 * rendering. Pure: ids and times are passed in.
 *
 * A `changes` notification carries its changes in the `tierwatch changes --format json` contract
 * (built by the same `toChangeRow`), each with a `classification` added at the end.
 */
import type { WebhookFormat } from '../config.ts';
import type { ChangeRecord } from '../store/history-store.ts';
import { toChangeRow, type ChangeRow } from '../query/changes.ts';
import { matchesPattern } from '../query/filters.ts';
import { describable } from '../output/shapes.ts';
import { describeChange } from '../report/describe-change.ts';
import { CLASSIFICATIONS, classifyChange, type Classification } from './classify.ts';

export interface ClassifiedChange extends ChangeRow {
  classification: Classification;
}

export interface ChangesNotification {
  id: string;
  type: 'changes';
  run: { run_id: number; account_id: string; observed_at: string };
  summary: Record<Classification, number>;
  changes: ClassifiedChange[];
}

export interface StaleNotification {
  id: string;
  type: 'stale';
  /** When tierwatch noticed. */
  at: string;
  /** The oldest of the accounts' last successful sweeps; null when none ever succeeded. */
  last_success_at: string | null;
  threshold_seconds: number;
  reason: string;
}

export interface RecoveredNotification {
  id: string;
  type: 'recovered';
  at: string;
  last_success_at: string;
  stale_since: string;
}

export type Notification = ChangesNotification | StaleNotification | RecoveredNotification;

export interface AlertFilter {
  /** Symbol patterns (`*` wildcard); empty = all. */
  symbols: readonly string[];
  /** 'tightening' keeps the changes that tighten anything: tightening and mixed. */
  only: 'tightening' | null;
}

/** The stored change records in the output contract, classified. */
export function classifiedChanges(records: readonly ChangeRecord[]): ClassifiedChange[] {
  return records.map((record) => {
    const row = toChangeRow({ ...record, changed_columns: JSON.stringify(record.changed_columns) });
    return { ...row, classification: classifyChange(row) };
  });
}

/** The changes a webhook should hear of under `filter`, in their stored order. */
export function selectChanges(changes: readonly ClassifiedChange[], filter: AlertFilter): ClassifiedChange[] {
  return changes.filter(
    (change) =>
      (filter.symbols.length === 0 || filter.symbols.some((pattern) => matchesPattern(pattern, change.symbol))) &&
      (filter.only === null || change.classification !== 'loosening'),
  );
}

/** One run's notification; null when no change survives the filter (nothing is sent). */
export function changesNotification(
  id: string,
  run: { runId: number; accountId: string; observedAt: string },
  changes: readonly ClassifiedChange[],
): ChangesNotification | null {
  if (changes.length === 0) return null;
  const summary = Object.fromEntries(CLASSIFICATIONS.map((kind) => [kind, 0])) as Record<Classification, number>;
  for (const change of changes) summary[change.classification] += 1;
  return {
    id,
    type: 'changes',
    run: { run_id: run.runId, account_id: run.accountId, observed_at: run.observedAt },
    summary,
    changes: [...changes],
  };
}

/** Slack shows long messages poorly; the rest is one command away. */
export const SLACK_MAX_LINES = 20;

/** The compact human summary of a notification, as Slack (and most chat webhooks) show it. */
export function slackText(notification: Notification): string {
  switch (notification.type) {
    case 'changes': {
      const { run, changes, summary } = notification;
      const counts = CLASSIFICATIONS.filter((kind) => summary[kind] > 0).map((kind) => `${summary[kind]} ${kind}`).join(', ');
      const head = `tierwatch: ${changes.length} tier change${changes.length === 1 ? '' : 's'} on account ${run.account_id} (${counts}) — run ${run.run_id}, observed ${run.observed_at}`;
      const lines = changes.slice(0, SLACK_MAX_LINES).map((change) => `• [${change.classification}] ${describeChange(describable(change))}`);
      const more = changes.length - SLACK_MAX_LINES;
      if (more > 0) lines.push(`…and ${more} more: tierwatch changes --since run:${run.run_id} --account ${run.account_id}`);
      return [head, ...lines].join('\n');
    }
    case 'stale':
      return `tierwatch: collection is STALE — ${notification.reason}. No successful sweep within ${notification.threshold_seconds} s; check the daemon's log and \`tierwatch runs --failed\`.`;
    case 'recovered':
      return `tierwatch: collection RECOVERED — successful sweep at ${notification.last_success_at} (stale since ${notification.stale_since}).`;
  }
}

/** The exact body sent for a notification in a format: JSON text, no trailing newline. */
export function renderBody(notification: Notification, format: WebhookFormat): string {
  return format === 'slack' ? JSON.stringify({ text: slackText(notification) }) : JSON.stringify(notification);
}
