/**
 * Sending the outbox: one POST per attempt with a timeout, bounded retries with backoff within a
 * pass, and order per URL (a notification that cannot be delivered yet holds back the ones after
 * it, so a receiver never sees run 8 before run 7). What is still pending after a pass stays in
 * the outbox for the next pass (the next run, or the next start).
 *
 * Holding back is bounded: a notification that can never be delivered is given up (status `dead`)
 * so the ones after it go on — when the receiver rejects it for good (a 4xx other than 408/429),
 * after `maxAttempts` attempts in all, or once it is older than `maxAgeMs`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { redactUrl } from '../config.ts';
import { backoffDelay } from '../backoff.ts';
import type { Logger } from '../log.ts';
import type { DeliveryOutbox, OutboxRow } from './outbox.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signBody } from './signature.ts';

/** What the delivery reports to the metrics. */
export interface DeliveryCounters {
  /** One attempt's result. */
  deliveryAttempt(result: 'delivered' | 'failed'): void;
  /** Notifications still pending after a pass. */
  pendingNotifications(count: number): void;
  /** Notifications given up (status `dead`) in the outbox now. */
  deadNotifications(count: number): void;
  /** One notification given up, by why. */
  notificationDead(reason: DeadReason): void;
}

/** Why a notification was given up: the receiver refused it, too many attempts, or too old. */
export type DeadReason = 'rejected' | 'attempts' | 'age';

export interface DeliveryOptions {
  timeoutMs: number;
  /** Retries after the first attempt, per notification per pass. */
  retries: number;
  /** Attempts in all after which a notification is given up. */
  maxAttempts: number;
  /** Age since it was queued past which a notification is given up. */
  maxAgeMs: number;
  backoff: { baseMs: number; maxMs: number };
  /** The signing key, asked for at every attempt (a rotated file takes effect at once); null = unsigned. */
  secret: () => string | null;
  userAgent: string;
  logger: Logger;
  counters?: DeliveryCounters;
  fetch?: typeof fetch;
  now?: () => Date;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/**
 * Why an attempt failed, in words safe to log and store (no URL path, no secret). `permanent`: the
 * receiver refused this body for good, so sending it again cannot help.
 */
export class DeliveryFailure extends Error {
  readonly permanent: boolean;
  constructor(message: string, permanent = false) {
    super(message);
    this.permanent = permanent;
  }
}

/**
 * A 4xx says the request itself is wrong (400 bad payload, 404 gone, 410, 413 too large, 401/403
 * a revoked hook): the same bytes will be refused again. 408 (timeout) and 429 (slow down) say
 * "later", so they are retried like a 5xx.
 */
export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status <= 499 && status !== 408 && status !== 429;
}

const realSleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).then(() => undefined);

/** The headers of one attempt. */
export function deliveryHeaders(
  row: Pick<OutboxRow, 'notification_id' | 'kind' | 'body'>,
  secret: string | null,
  now: Date,
  userAgent: string,
): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'user-agent': userAgent,
    'idempotency-key': row.notification_id,
    'x-tierwatch-event': row.kind,
  };
  if (secret !== null) {
    const timestamp = String(Math.floor(now.getTime() / 1000));
    headers[TIMESTAMP_HEADER.toLowerCase()] = timestamp;
    headers[SIGNATURE_HEADER.toLowerCase()] = signBody(secret, timestamp, row.body);
  }
  return headers;
}

/** One POST. Resolves on a 2xx answer; throws DeliveryFailure otherwise (or the abort reason when stopped). */
export async function postOnce(row: OutboxRow, options: DeliveryOptions, stop: AbortSignal): Promise<void> {
  const send = options.fetch ?? fetch;
  const now = options.now ?? (() => new Date());
  const timeout = AbortSignal.timeout(options.timeoutMs);
  let response: Response;
  try {
    response = await send(row.url, {
      method: 'POST',
      headers: deliveryHeaders(row, options.secret(), now(), options.userAgent),
      body: row.body,
      // A redirect is an error, not a hop: a POST must not turn into a GET, nor go to another host.
      redirect: 'manual',
      signal: AbortSignal.any([stop, timeout]),
    });
  } catch (error) {
    if (stop.aborted) throw stop.reason;
    if (timeout.aborted) throw new DeliveryFailure(`no answer within ${options.timeoutMs} ms`);
    throw new DeliveryFailure(describeNetworkError(error, row.url));
  }
  // The answer's body is not needed; release the connection either way.
  await response.body?.cancel().catch(() => undefined);
  if (response.status < 200 || response.status > 299) {
    throw new DeliveryFailure(
      `answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
      isPermanentStatus(response.status),
    );
  }
}

function describeNetworkError(error: unknown, url: string): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const text = cause?.code
    ? `${cause.code}${cause.message ? `: ${cause.message}` : ''}`
    : error instanceof Error
      ? error.message
      : String(error);
  return text.split(url).join(redactUrl(url));
}

/** Why `row` must be given up before any attempt (too many attempts already, or too old), or null. */
function giveUpBefore(
  row: OutboxRow,
  options: DeliveryOptions,
  now: Date,
): { reason: DeadReason; text: string } | null {
  if (row.attempts >= options.maxAttempts) {
    return {
      reason: 'attempts',
      text: `gave up after ${row.attempts} failed attempts (TIERWATCH_WEBHOOK_MAX_ATTEMPTS=${options.maxAttempts}); last error: ${row.last_error ?? 'none'}`,
    };
  }
  const age = now.getTime() - Date.parse(row.created_at);
  if (age > options.maxAgeMs) {
    return {
      reason: 'age',
      text: `gave up: not delivered within ${formatAge(options.maxAgeMs)} of being queued (TIERWATCH_WEBHOOK_MAX_AGE)${row.last_error === null ? '' : `; last error: ${row.last_error}`}`,
    };
  }
  return null;
}

function formatAge(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Delivers `url`'s pending notifications, oldest first, until its queue is empty ('drained'), one
 * notification fails every attempt of this pass without being given up ('blocked'; it stays
 * pending and holds back the rest), or `stop` is aborted ('stopped'). A notification given up
 * (`dead`) is logged and skipped. Never throws for a delivery problem; a database error propagates.
 */
export async function deliverQueue(
  outbox: DeliveryOutbox,
  url: string,
  options: DeliveryOptions,
  stop: AbortSignal,
): Promise<'drained' | 'blocked' | 'stopped'> {
  const now = options.now ?? (() => new Date());
  const sleep = options.sleep ?? realSleep;
  const log = options.logger.child({ webhook: redactUrl(url) });
  const giveUp = async (row: OutboxRow, reason: DeadReason, text: string, attempts: number): Promise<void> => {
    await outbox.markDead(row.outbox_id, now(), text);
    options.counters?.notificationDead(reason);
    options.counters?.deadNotifications(await outbox.deadCount());
    log.warn(
      {
        notification: row.notification_id,
        outboxId: row.outbox_id,
        kind: row.kind,
        runId: row.run_id,
        attempts,
        deadReason: reason,
        reason: text,
      },
      `webhook notification ${row.outbox_id} is dead, later ones go on (\`tierwatch alerts retry ${row.outbox_id}\` or \`drop ${row.outbox_id}\`): ${text}`,
    );
  };
  for (;;) {
    if (stop.aborted) return 'stopped';
    const row = await outbox.nextPending(url);
    if (row === undefined) return 'drained';
    const before = giveUpBefore(row, options, now());
    if (before !== null) {
      await giveUp(row, before.reason, before.text, row.attempts);
      continue;
    }
    for (let attempt = 0; ; attempt += 1) {
      try {
        await postOnce(row, options, stop);
      } catch (error) {
        if (stop.aborted) return 'stopped';
        const reason =
          error instanceof DeliveryFailure ? error.message : `unexpected error: ${(error as Error).message}`;
        const attempts = row.attempts + attempt + 1;
        await outbox.recordFailure(row.outbox_id, now(), reason);
        options.counters?.deliveryAttempt('failed');
        if (error instanceof DeliveryFailure && error.permanent) {
          await giveUp(row, 'rejected', `the receiver refused it for good: ${reason}`, attempts);
          break;
        }
        if (attempts >= options.maxAttempts) {
          await giveUp(
            row,
            'attempts',
            `gave up after ${attempts} failed attempts (TIERWATCH_WEBHOOK_MAX_ATTEMPTS=${options.maxAttempts}); last error: ${reason}`,
            attempts,
          );
          break;
        }
        const last = attempt >= options.retries;
        log.warn(
          { notification_id: row.notification_id, kind: row.kind, run_id: row.run_id, attempt: attempts, reason },
          last
            ? `webhook delivery failed; it stays pending for the next pass: ${reason}`
            : `webhook delivery failed, retrying: ${reason}`,
        );
        if (last) return 'blocked';
        try {
          await sleep(
            backoffDelay(attempt, {
              baseMs: options.backoff.baseMs,
              maxMs: options.backoff.maxMs,
              random: options.random,
            }),
            stop,
          );
        } catch {
          return 'stopped';
        }
        continue;
      }
      await outbox.markDelivered(row.outbox_id, now());
      options.counters?.deliveryAttempt('delivered');
      log.info(
        { notification_id: row.notification_id, kind: row.kind, run_id: row.run_id },
        'webhook notification delivered',
      );
      break;
    }
  }
}
