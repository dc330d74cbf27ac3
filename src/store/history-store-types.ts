/**
 * What the history store (history-store.ts) takes and returns: a sweep to store and its outcome, a
 * run's start and failure, and the hook a sweep transaction calls. Kept apart so that the readers
 * of these shapes (the collector, the alerts, the benchmarks) need not load the store.
 */
import type { Tier } from '../history/tier.ts';
import type { ChangeRecord } from './change-records.ts';

export interface SweepOutcome {
  added: number;
  removed: number;
  changed: number;
  /** Every change stored, in the order stored: removed, then changed, then added. */
  changes: ChangeRecord[];
  /** The account's first successful sweep: its changes are the baseline, not news. */
  baseline: boolean;
}

export interface SweepInput {
  accountId: string;
  /** When the last page arrived: valid_from/valid_to of every version this sweep opens/closes. */
  observedAt: Date;
  finishedAt: Date;
  /** The complete, validated tier list of the account. */
  tiers: Tier[];
  pages: number;
  /** Refuse (MASS_REMOVAL) a sweep that would remove more than this share of the current tiers. */
  maxRemovalRatio: number;
}

/** The longest error message a run row keeps: a failure's message is cut there, with `…`. */
const MAX_ERROR_MESSAGE_LENGTH = 4000;

/** A failure's message as either store records it in `run_ledger.error_message`. */
export function storedErrorMessage(message: string): string {
  return message.length > MAX_ERROR_MESSAGE_LENGTH ? `${message.slice(0, MAX_ERROR_MESSAGE_LENGTH)}…` : message;
}

export interface RunFailure {
  status: 'failed' | 'aborted';
  code: string;
  message: string;
  pages: number;
  finishedAt: Date;
  observedAt?: Date | null;
}

export interface StartRunInput {
  accountId: string;
  endpoint: string;
  /** The public key the run authenticates with (provenance); never a secret. */
  publicKey: string | null;
  startedAt: Date;
}

/** What one sweep stored, as a sweep hook sees it (inside the transaction, before COMMIT). */
export interface StoredSweep {
  runId: number;
  accountId: string;
  observedAt: string;
  changes: readonly ChangeRecord[];
  /** The account's first successful sweep (its changes are the baseline: never alerted). */
  baseline: boolean;
}

/**
 * Called inside every sweep transaction, after the sweep's writes and before COMMIT, on the same
 * connection: what it writes commits with the sweep, and whatever it throws rolls the sweep back.
 * The alert outbox is written from here, so a notification exists exactly when its changes do.
 */
export type SweepHook = (stored: StoredSweep) => void;
