/**
 * Which frame answers what, as pure decisions the connection (client.ts) carries out. Answers carry
 * no request id: with one request in flight, the answer to it is the next leverage page, or the next
 * error frame that does not name another request. Every other frame answers nothing and is
 * ignored (counted, and logged once per type); a leverage page nobody waits for is a stale answer,
 * after which the connection cannot be trusted to pair answers with requests.
 */
import { TierwatchError } from '../errors.ts';
import { frameTypeLabel, LEVERAGE_RESPONSE_KEY, type Frame, type FrameTypeLabel } from './protocol.ts';

/** A frame that answers nothing we asked: why, and the log fields that say which. */
export interface Ignored {
  kind: 'ignore';
  type: FrameTypeLabel;
  why: string;
  fields?: Record<string, unknown>;
}

export type AuthAnswer = { kind: 'authenticated' } | { kind: 'fail'; error: TierwatchError } | Ignored;

export type PageAnswer =
  { kind: 'page'; rows: unknown[] } | { kind: 'error'; error: TierwatchError } | (Ignored & { desynchronised?: true });

function ignored(type: FrameTypeLabel, why: string, fields?: Record<string, unknown>): Ignored {
  return fields === undefined ? { kind: 'ignore', type, why } : { kind: 'ignore', type, why, fields };
}

/** An exchange error frame answering a request. */
export function exchangeError(frame: Extract<Frame, { kind: 'error' }>, what = ''): TierwatchError {
  const text = `the exchange answered ${what}${frame.errorCode}${frame.message ? `: ${frame.message}` : ''}`;
  const details = { exchangeCode: frame.errorCode, exchangeMessage: frame.message, retryAfterMs: frame.retryAfterMs };
  if (frame.errorCode === 'RateLimited') {
    return new TierwatchError('QFEX_RATE_LIMITED', text, { retryable: true, details });
  }
  if (frame.errorCode === 'ServerError') {
    return new TierwatchError('QFEX_SERVER_ERROR', text, { retryable: true, details });
  }
  return new TierwatchError('QFEX_ERROR', text, { details });
}

/** What a frame means while the answer to the auth message is awaited. */
export function authAnswer(frame: Frame): AuthAnswer {
  switch (frame.kind) {
    case 'auth_ok':
      return { kind: 'authenticated' };
    case 'auth_rejected':
      return {
        kind: 'fail',
        error: new TierwatchError('QFEX_AUTH_REJECTED', `the exchange rejected the credentials: ${frame.reason}`),
      };
    case 'error':
      if (frame.incomingType !== null && frame.incomingType !== 'auth') {
        return ignored('err', 'an error about another request while the auth answer was awaited', {
          exchange_code: frame.errorCode.slice(0, 60),
        });
      }
      // "Safe to retry after a short delay": a busy exchange is not a refusal of the key.
      if (frame.errorCode === 'RateLimited' || frame.errorCode === 'ServerError') {
        return { kind: 'fail', error: exchangeError(frame, 'the auth message with ') };
      }
      return {
        kind: 'fail',
        error: new TierwatchError(
          'QFEX_AUTH_REJECTED',
          `the exchange rejected the authentication with ${frame.errorCode}${frame.message ? `: ${frame.message}` : ''}`,
          { details: { exchangeCode: frame.errorCode } },
        ),
      };
    case 'leverage_page':
      return ignored(LEVERAGE_RESPONSE_KEY, 'a leverage page before the auth answer');
    case 'other':
      return ignored(frameTypeLabel(frame.key), 'a message that answers nothing we asked');
  }
}

/** What a frame means on an authenticated connection, given whether a page request is in flight. */
export function pageAnswer(frame: Frame, awaiting: boolean): PageAnswer {
  switch (frame.kind) {
    case 'leverage_page':
      if (awaiting) return { kind: 'page', rows: frame.rows };
      // Answered twice, or late: whatever comes next may belong to an older request too.
      return {
        ...ignored(
          LEVERAGE_RESPONSE_KEY,
          'a leverage page nobody was waiting for (a stale answer); the next request goes to a fresh connection',
        ),
        desynchronised: true,
      };
    case 'error':
      // With one request in flight, an error frame answers it (as the official CLI assumes),
      // unless it names another request; with none in flight it answers nothing.
      if (frame.incomingType !== null && frame.incomingType !== 'get_available_leverage_levels') {
        return ignored('err', 'an error frame about a request we never sent', {
          exchange_code: frame.errorCode.slice(0, 60),
        });
      }
      if (!awaiting) {
        return ignored('err', 'an error frame while no request was in flight', {
          exchange_code: frame.errorCode.slice(0, 60),
        });
      }
      return { kind: 'error', error: exchangeError(frame) };
    case 'auth_ok':
    case 'auth_rejected':
      return ignored('authenticated', 'an auth answer after authentication');
    case 'other':
      return ignored(frameTypeLabel(frame.key), 'a message that answers nothing we asked');
  }
}
