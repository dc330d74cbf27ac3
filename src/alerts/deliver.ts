/**
 * Sending the outbox: one POST per attempt with a timeout, bounded retries with backoff within a
 * pass, and strict order per URL (a notification that cannot be delivered holds back the ones after
 * it, so a receiver never sees run 8 before run 7). What is still pending after a pass stays in
 * the outbox for the next pass (the next run, or the next start).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { redactUrl } from '../config.ts';
import { backoffDelay } from '../collect/sweep.ts';
import type { Logger } from '../log.ts';
import type { Outbox, OutboxRow } from './outbox.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signBody } from './signature.ts';

/** What the delivery reports to the metrics. */
export interface DeliveryCounters {
  /** One attempt's result. */
  deliveryAttempt(result: 'delivered' | 'failed'): void;
  /** Notifications still pending after a pass. */
  pendingNotifications(count: number): void;
}

export interface DeliveryOptions {
  timeoutMs: number;
  /** Retries after the first attempt, per notification per pass. */
  retries: number;
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

/** Why an attempt failed, in words safe to log and store (no URL path, no secret). */
export class DeliveryFailure extends Error {}

const realSleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).then(() => undefined);

/** The headers of one attempt. */
export function deliveryHeaders(row: Pick<OutboxRow, 'notification_id' | 'kind' | 'body'>, secret: string | null, now: Date, userAgent: string): Record<string, string> {
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
    throw new DeliveryFailure(`answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
  }
}

function describeNetworkError(error: unknown, url: string): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const text = cause?.code ? `${cause.code}${cause.message ? `: ${cause.message}` : ''}` : error instanceof Error ? error.message : String(error);
  return text.split(url).join(redactUrl(url));
}

/**
 * Delivers `url`'s pending notifications, oldest first, until its queue is empty ('drained'), one
 * notification fails every attempt of this pass ('blocked'; it stays pending and holds back the
 * rest), or `stop` is aborted ('stopped'). Never throws for a delivery problem; a database error
 * propagates.
 */
export async function deliverQueue(outbox: Outbox, url: string, options: DeliveryOptions, stop: AbortSignal): Promise<'drained' | 'blocked' | 'stopped'> {
  const now = options.now ?? (() => new Date());
  const sleep = options.sleep ?? realSleep;
  const log = options.logger.child({ webhook: redactUrl(url) });
  for (;;) {
    if (stop.aborted) return 'stopped';
    const row = outbox.nextPending(url);
    if (row === undefined) return 'drained';
    for (let attempt = 0; ; attempt += 1) {
      try {
        await postOnce(row, options, stop);
      } catch (error) {
        if (stop.aborted) return 'stopped';
        const reason = error instanceof DeliveryFailure ? error.message : `unexpected error: ${(error as Error).message}`;
        outbox.recordFailure(row.outbox_id, now(), reason);
        options.counters?.deliveryAttempt('failed');
        const last = attempt >= options.retries;
        log.warn(
          { notification_id: row.notification_id, kind: row.kind, run_id: row.run_id, attempt: row.attempts + attempt + 1, reason },
          last ? `webhook delivery failed; it stays pending for the next pass: ${reason}` : `webhook delivery failed, retrying: ${reason}`,
        );
        if (last) return 'blocked';
        try {
          await sleep(backoffDelay(attempt, options.backoff.baseMs, options.backoff.maxMs, options.random), stop);
        } catch {
          return 'stopped';
        }
        continue;
      }
      outbox.markDelivered(row.outbox_id, now());
      options.counters?.deliveryAttempt('delivered');
      log.info({ notification_id: row.notification_id, kind: row.kind, run_id: row.run_id }, 'webhook notification delivered');
      break;
    }
  }
}
