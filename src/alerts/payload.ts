/**
 * What a webhook receives: the notification documents (JSON) and their Slack-style `{"text": …}`
 * rendering. Pure: ids and times are passed in.
 *
 * A `changes` notification carries its changes in the `tierwatch changes --format json` contract
 * (built by the same `toChangeRow`), each with a `classification` added at the end. It stays small
 * whatever the run: a first sweep adds thousands of tiers, and receivers refuse big bodies (HTTP
 * 413) for good. Past MAX_CHANGES changes or MAX_BODY_BYTES it carries the counts, the first
 * changes, and the command line that lists them all.
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

export type ChangeKind = ChangeRow['change'];
const CHANGE_KINDS: readonly ChangeKind[] = ['added', 'changed', 'removed'];

export interface ChangesNotification {
  id: string;
  type: 'changes';
  run: { run_id: number; account_id: string; observed_at: string };
  /** Every change of the notification by classification, the omitted ones included. */
  summary: Record<Classification, number>;
  /** Every change of the notification by kind (added, changed, removed). */
  kinds: Record<ChangeKind, number>;
  /** How many changes the notification reports; `changes` holds the first of them. */
  total: number;
  /** How many of them `changes` leaves out (0 when it holds them all). */
  omitted: number;
  /** The command line that lists every change of the run. */
  all_changes: string;
  changes: ClassifiedChange[];
}

/** A notification carries at most this many changes... */
export const MAX_CHANGES = 100;
/** ...and a JSON body of at most this many bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

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
  const kinds = Object.fromEntries(CHANGE_KINDS.map((kind) => [kind, 0])) as Record<ChangeKind, number>;
  for (const change of changes) {
    summary[change.classification] += 1;
    kinds[change.change] += 1;
  }
  const included = changes.slice(0, MAX_CHANGES);
  return {
    id,
    type: 'changes',
    run: { run_id: run.runId, account_id: run.accountId, observed_at: run.observedAt },
    summary,
    kinds,
    total: changes.length,
    omitted: changes.length - included.length,
    all_changes: allChangesCommand(run.accountId, run.observedAt),
    changes: included,
  };
}

/**
 * `tierwatch changes` for exactly one run: its observed_at is the instant all of its changes carry,
 * so [observed_at, observed_at + 1 ms) holds them and nothing else of that account.
 */
export function allChangesCommand(accountId: string, observedAt: string): string {
  const until = new Date(Date.parse(observedAt) + 1).toISOString();
  return `tierwatch changes --since ${observedAt} --until ${until} --account ${shellWord(accountId)}`;
}

/** A word a POSIX shell reads back as itself. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_.:@%+=/-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The notification as JSON of at most MAX_BODY_BYTES: the changes past what fits are left out
 * (counted in `omitted`). Halving keeps it to a few serialisations even for huge rows.
 */
function fittedJson(notification: Notification): string {
  let body = JSON.stringify(notification);
  if (notification.type !== 'changes') return body;
  let changes = notification.changes;
  while (Buffer.byteLength(body) > MAX_BODY_BYTES && changes.length > 0) {
    changes = changes.slice(0, Math.floor(changes.length / 2));
    body = JSON.stringify({ ...notification, omitted: notification.total - changes.length, changes });
  }
  return body;
}

/** Slack shows long messages poorly; the rest is one command away. */
export const SLACK_MAX_LINES = 20;
/** One change line at most (before escaping): a symbol is any string the exchange sends. */
const SLACK_MAX_LINE = 200;
/** Slack cuts `text` at 40,000 characters and advises under 4,000; tierwatch stays under this. */
export const SLACK_MAX_TEXT = 3_900;

/**
 * Slack's escaping (its "mrkdwn" control characters): `<…>` is a link or a mention such as
 * `<!channel>`, `&` starts an entity. Every string that reaches Slack goes through this, so an
 * exchange string is shown as written and never pings or links anyone.
 */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clipped(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The compact human summary of a notification, as Slack (and most chat webhooks) show it, escaped. */
export function slackText(notification: Notification): string {
  switch (notification.type) {
    case 'changes': {
      const { run, changes, summary, total } = notification;
      const counts = CLASSIFICATIONS.filter((kind) => summary[kind] > 0)
        .map((kind) => `${summary[kind]} ${kind}`)
        .join(', ');
      const head = slackEscape(
        clipped(
          `tierwatch: ${total} tier change${total === 1 ? '' : 's'} on account ${run.account_id} (${counts}) — run ${run.run_id}, observed ${run.observed_at}`,
          SLACK_MAX_LINE * 2,
        ),
      );
      const footer = (shown: number) => slackEscape(`…and ${total - shown} more: ${notification.all_changes}`);
      const lines = [head];
      let length = head.length;
      let shown = 0;
      for (const change of changes.slice(0, SLACK_MAX_LINES)) {
        const line = slackEscape(
          clipped(`• [${change.classification}] ${describeChange(describable(change))}`, SLACK_MAX_LINE),
        );
        // Room is kept for the footer, whose count can only grow shorter than this estimate.
        if (length + 1 + line.length + 1 + footer(0).length > SLACK_MAX_TEXT) break;
        lines.push(line);
        length += 1 + line.length;
        shown += 1;
      }
      if (shown < total) lines.push(footer(shown));
      return lines.join('\n');
    }
    case 'stale':
      return slackEscape(
        `tierwatch: collection is STALE — ${clipped(notification.reason, SLACK_MAX_LINE * 5)}. No successful sweep within ${notification.threshold_seconds} s; check the daemon's log and \`tierwatch runs --failed\`.`,
      );
    case 'recovered':
      return slackEscape(
        `tierwatch: collection RECOVERED — successful sweep at ${notification.last_success_at} (stale since ${notification.stale_since}).`,
      );
  }
}

/** The exact body sent for a notification in a format: JSON text, no trailing newline. */
export function renderBody(notification: Notification, format: WebhookFormat): string {
  return format === 'slack' ? JSON.stringify({ text: slackText(notification) }) : fittedJson(notification);
}
