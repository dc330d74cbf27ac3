/**
 * The alert outbox: notifications waiting for (or done with) delivery, one row per notification per
 * webhook URL, delivered per URL in outbox_id order. Writes go through the daemon's connection (the
 * enqueue of a `changes` notification runs inside the sweep transaction); reads for
 * `tierwatch alerts` work on a read-only connection.
 */
import type Database from 'better-sqlite3';
import type { AlertKind, OutboxStatus } from '../store/schema.ts';
import type { StoreDb } from '../store/db.ts';
import { cachedStatement, type HistoryReader } from '../query/reader.ts';

export interface OutboxRow {
  outbox_id: number;
  notification_id: string;
  kind: AlertKind;
  url: string;
  format: string;
  run_id: number | null;
  created_at: string;
  body: string;
  status: OutboxStatus;
  attempts: number;
  last_attempt_at: string | null;
  last_error: string | null;
  delivered_at: string | null;
  dead_at: string | null;
  dead_reason: string | null;
}

export interface OutboxEntry {
  notificationId: string;
  kind: AlertKind;
  url: string;
  format: string;
  runId: number | null;
  body: string;
}

/**
 * What delivery (deliver.ts) needs of an outbox: this SQLite one, or the Postgres one
 * (pg-outbox.ts), whose writes are fenced by the leadership lease. Delivery awaits every call.
 */
export interface DeliveryOutbox {
  nextPending(url: string): OutboxRow | undefined | Promise<OutboxRow | undefined>;
  markDelivered(outboxId: number, at: Date): void | Promise<void>;
  recordFailure(outboxId: number, at: Date, error: string): void | Promise<void>;
  markDead(outboxId: number, at: Date, reason: string): void | Promise<void>;
  deadCount(): number | Promise<number>;
}

const MAX_ERROR_LENGTH = 500;

/** An error text as the outbox stores it: at most MAX_ERROR_LENGTH characters. */
export function clip(text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}

export class Outbox implements DeliveryOutbox {
  readonly #sqlite: Database.Database;
  readonly #stmt: {
    insert: Database.Statement<[string, string, string, string, number | null, string, string]>;
    next: Database.Statement<[string], OutboxRow>;
    delivered: Database.Statement<[string, string, number]>;
    failed: Database.Statement<[string, string, number]>;
    dead: Database.Statement<[string, string, number]>;
    pendingCount: Database.Statement<[], number>;
    deadCount: Database.Statement<[], number>;
    getState: Database.Statement<[string], { value: string }>;
    putState: Database.Statement<[string, string, string]>;
  };

  /** `db` must be writable; the outbox never closes it. */
  constructor(db: StoreDb) {
    const sqlite = db.sqlite;
    this.#sqlite = sqlite;
    this.#stmt = {
      insert: sqlite.prepare(
        `INSERT INTO alert_outbox (notification_id, kind, url, format, run_id, created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      next: sqlite.prepare(
        `SELECT * FROM alert_outbox WHERE url = ? AND status = 'pending' ORDER BY outbox_id LIMIT 1`,
      ),
      delivered: sqlite.prepare(
        `UPDATE alert_outbox SET status = 'delivered', delivered_at = ?, attempts = attempts + 1, last_attempt_at = ?
          WHERE outbox_id = ? AND status = 'pending'`,
      ),
      failed: sqlite.prepare(
        `UPDATE alert_outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = ? WHERE outbox_id = ?`,
      ),
      dead: sqlite.prepare(
        `UPDATE alert_outbox SET status = 'dead', dead_at = ?, dead_reason = ? WHERE outbox_id = ? AND status = 'pending'`,
      ),
      pendingCount: sqlite.prepare<[], number>(`SELECT count(*) FROM alert_outbox WHERE status = 'pending'`).pluck(),
      deadCount: sqlite.prepare<[], number>(`SELECT count(*) FROM alert_outbox WHERE status = 'dead'`).pluck(),
      getState: sqlite.prepare('SELECT value FROM alert_state WHERE key = ?'),
      putState: sqlite.prepare(
        `INSERT INTO alert_state (key, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      ),
    };
  }

  /** Inserts the entries (in the caller's transaction, if any). Throws on a database error. */
  enqueue(entries: readonly OutboxEntry[], createdAt: string): void {
    for (const entry of entries) {
      this.#stmt.insert.run(
        entry.notificationId,
        entry.kind,
        entry.url,
        entry.format,
        entry.runId,
        createdAt,
        entry.body,
      );
    }
  }

  /** The oldest pending notification for `url`, or undefined when its queue is empty. */
  nextPending(url: string): OutboxRow | undefined {
    return this.#stmt.next.get(url);
  }

  markDelivered(outboxId: number, at: Date): void {
    this.#stmt.delivered.run(at.toISOString(), at.toISOString(), outboxId);
  }

  /** Counts a failed attempt and keeps the row pending. `error` must hold no secret and no full URL. */
  recordFailure(outboxId: number, at: Date, error: string): void {
    this.#stmt.failed.run(at.toISOString(), clip(error), outboxId);
  }

  /**
   * Gives a pending notification up: it stops holding back the later ones of its URL and waits
   * for `tierwatch alerts retry|drop`. `reason` must hold no secret and no full URL.
   */
  markDead(outboxId: number, at: Date, reason: string): void {
    this.#stmt.dead.run(at.toISOString(), clip(reason), outboxId);
  }

  pendingCount(): number {
    return this.#stmt.pendingCount.get() as number;
  }

  deadCount(): number {
    return this.#stmt.deadCount.get() as number;
  }

  getState(key: string): string | null {
    return this.#stmt.getState.get(key)?.value ?? null;
  }

  putState(key: string, value: string, at: Date): void {
    this.#stmt.putState.run(key, value, at.toISOString());
  }

  /** Runs `work` in one IMMEDIATE transaction (state change and its notifications together). */
  transaction<T>(work: () => T): T {
    return this.#sqlite.transaction(work).immediate();
  }
}

/** A row of `tierwatch alerts`: the outbox without the body. */
export type OutboxListing = Omit<OutboxRow, 'body'>;

export const OUTBOX_LISTING_COLUMNS = [
  'outbox_id',
  'notification_id',
  'kind',
  'url',
  'format',
  'run_id',
  'created_at',
  'status',
  'attempts',
  'last_attempt_at',
  'last_error',
  'delivered_at',
  'dead_at',
  'dead_reason',
] as const;

/**
 * The outbox, oldest first: every row, only the pending (or dead) ones, or the last N. Read-only (a
 * database older than the outbox never gets here: a read-only open refuses it with DB_NEEDS_MIGRATION).
 */
export function listOutbox(db: HistoryReader, options: OutboxListingOptions = {}): OutboxListing[] {
  return cachedStatement<OutboxListing>(db, listOutboxSql(options)).all();
}

export interface OutboxListingOptions {
  pendingOnly?: boolean;
  deadOnly?: boolean;
  last?: number;
}

/** The SQL of the listing, the same on SQLite and Postgres (a named subquery: Postgres before 16 requires it). */
export function listOutboxSql(options: OutboxListingOptions): string {
  const statuses = [...(options.pendingOnly ? ['pending'] : []), ...(options.deadOnly ? ['dead'] : [])];
  const where = statuses.length === 0 ? '' : `WHERE status IN (${statuses.map((status) => `'${status}'`).join(', ')})`;
  const columns = OUTBOX_LISTING_COLUMNS.join(', ');
  return options.last === undefined
    ? `SELECT ${columns} FROM alert_outbox ${where} ORDER BY outbox_id`
    : `SELECT * FROM (SELECT ${columns} FROM alert_outbox ${where} ORDER BY outbox_id DESC LIMIT ${Math.floor(options.last)}) AS recent ORDER BY outbox_id`;
}

/** One persisted alert state by key (SQLite-style `?`, shared with Postgres). */
export const ALERT_STATE_SQL = 'SELECT value, updated_at FROM alert_state WHERE key = ?';

/** The persisted staleness state (see staleness.ts), read-only; null when never set. */
export function readAlertState(db: HistoryReader, key: string): { value: string; updated_at: string } | null {
  return cachedStatement<{ value: string; updated_at: string }>(db, ALERT_STATE_SQL).get(key) ?? null;
}
