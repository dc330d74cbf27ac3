/**
 * The alert outbox on a Postgres history: the same table and the same rows as on SQLite
 * (outbox.ts), written only by the leader. A `changes` notification is written inside its sweep's
 * fenced transaction (PgSweepHook), so it exists exactly when its changes do; every delivery mark
 * (delivered, failed attempt, dead) is its own fenced transaction, so a collector that lost the
 * lease can record nothing and gets DB_LEADERSHIP_LOST. Reads go through the pool.
 *
 * Delivery is at least once, as on SQLite: a leader that posted a notification and died before
 * marking it delivered leaves it pending, and the next leader posts it again with the same
 * notification id (the receiver's idempotency key).
 */
import type pg from 'pg';
import type { LeaderLease } from '../store/pg/lease.ts';
import { clip, type DeliveryOutbox, type OutboxEntry, type OutboxRow } from './outbox.ts';

export class PgOutbox implements DeliveryOutbox {
  readonly #lease: LeaderLease;
  readonly #pool: pg.Pool;

  constructor(lease: LeaderLease, pool: pg.Pool) {
    this.#lease = lease;
    this.#pool = pool;
  }

  /** Inserts the entries on `client`, inside the caller's (fenced) transaction. */
  async enqueueIn(client: pg.PoolClient, entries: readonly OutboxEntry[], createdAt: string): Promise<void> {
    for (const entry of entries) {
      await client.query(
        `INSERT INTO alert_outbox (notification_id, kind, url, format, run_id, created_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [entry.notificationId, entry.kind, entry.url, entry.format, entry.runId, createdAt, entry.body],
      );
    }
  }

  async nextPending(url: string): Promise<OutboxRow | undefined> {
    const result = await this.#pool.query<OutboxRow>(
      `SELECT * FROM alert_outbox WHERE url = $1 AND status = 'pending' ORDER BY outbox_id LIMIT 1`,
      [url],
    );
    return result.rows[0];
  }

  async markDelivered(outboxId: number, at: Date): Promise<void> {
    await this.#fenced(
      `UPDATE alert_outbox SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, last_attempt_at = $1
        WHERE outbox_id = $2 AND status = 'pending'`,
      [at.toISOString(), outboxId],
    );
  }

  async recordFailure(outboxId: number, at: Date, error: string): Promise<void> {
    await this.#fenced(
      `UPDATE alert_outbox SET attempts = attempts + 1, last_attempt_at = $1, last_error = $2 WHERE outbox_id = $3`,
      [at.toISOString(), clip(error), outboxId],
    );
  }

  async markDead(outboxId: number, at: Date, reason: string): Promise<void> {
    await this.#fenced(
      `UPDATE alert_outbox SET status = 'dead', dead_at = $1, dead_reason = $2 WHERE outbox_id = $3 AND status = 'pending'`,
      [at.toISOString(), clip(reason), outboxId],
    );
  }

  async pendingCount(): Promise<number> {
    return (
      await this.#pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM alert_outbox WHERE status = 'pending'`)
    ).rows[0]!.n;
  }

  async deadCount(): Promise<number> {
    return (await this.#pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM alert_outbox WHERE status = 'dead'`))
      .rows[0]!.n;
  }

  /** A state value (e.g. the staleness state), read on `client` inside the caller's transaction. */
  async getStateIn(client: pg.PoolClient, key: string): Promise<string | null> {
    const result = await client.query<{ value: string }>('SELECT value FROM alert_state WHERE key = $1 FOR UPDATE', [
      key,
    ]);
    return result.rows[0]?.value ?? null;
  }

  async putStateIn(client: pg.PoolClient, key: string, value: string, at: Date): Promise<void> {
    await client.query(
      `INSERT INTO alert_state (key, value, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [key, value, at.toISOString()],
    );
  }

  async #fenced(sql: string, values: unknown[]): Promise<void> {
    await this.#lease.writeTransaction(async (client) => {
      await client.query(sql, values);
    });
  }
}
