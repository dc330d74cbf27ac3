/**
 * `tierwatch alerts retry` and `alerts drop` on a Postgres history: the operator's writes on
 * alert_outbox, each in one transaction of its own session, with the same checks and messages as
 * on SQLite (dead.ts).
 *
 * They take no leadership lease: they never touch the history, only notifications the leader has
 * given up on. And they cannot race the leader's delivery into a wrong state, because the two
 * write disjoint states: the leader only moves a PENDING row (to delivered or dead, every mark
 * guarded by `status = 'pending'`), the operator only a DEAD one (back to pending, or deleted,
 * guarded by `status = 'dead'`). The rows are locked (`FOR UPDATE`) before they are checked, so a
 * mark the leader makes meanwhile waits for the operator's commit and is then judged on what it
 * committed. A notification the leader is delivering at that instant is pending, so retry/drop
 * refuse it (`is pending, not dead`); once the leader has marked it dead it can be retried, and the
 * leader's next pass sends it again.
 */
import type pg from 'pg';
import { TierwatchError } from '../errors.ts';
import { connectPg, describePgUrl } from '../store/pg/connection.ts';
import { numberParameters } from '../store/pg/read-session.ts';
import { DEAD_TARGET_SQL, DROP_SQL, requireDead, RETRY_SQL, type DeadTarget } from './dead.ts';

type TargetRow = DeadTarget & { status: string };

const UNDEFINED_TABLE = '42P01';

async function query<Row extends pg.QueryResultRow>(
  client: pg.Client,
  sql: string,
  positional: readonly unknown[] = [],
): Promise<Row[]> {
  const { text, values } = numberParameters(sql, {}, positional);
  return (await client.query<Row>(text, values)).rows;
}

/** Runs `work` in one transaction of a session of its own; errors named without the password. */
async function inTransaction<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const where = describePgUrl(url);
  let client: pg.Client;
  try {
    client = await connectPg(url, { applicationName: 'tierwatch alerts' });
  } catch (error) {
    throw new TierwatchError('DB_WRITE_FAILED', `Cannot connect to ${where}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    if (error instanceof TierwatchError) throw error;
    const message = (error as Error).message;
    if ((error as { code?: unknown }).code === UNDEFINED_TABLE) {
      throw new TierwatchError(
        'DB_NEEDS_MIGRATION',
        `The database ${where} holds no tierwatch history (${message}): run \`tierwatch migrate\` against it first.`,
        { cause: error },
      );
    }
    throw new TierwatchError('DB_WRITE_FAILED', `Cannot write to ${where}: ${message}`, { cause: error });
  } finally {
    void client.end().catch(() => {});
  }
}

/** As retryDead (dead.ts): the dead notification `which` (or every dead one) back to pending. */
export function retryDeadPg(url: string, which: number | 'dead', now: Date): Promise<DeadTarget[]> {
  return inTransaction(url, async (client) => {
    const targets =
      which === 'dead'
        ? (
            await query<TargetRow>(client, `${DEAD_TARGET_SQL} WHERE status = 'dead' ORDER BY outbox_id FOR UPDATE`)
          ).map((row) => requireDead(row, row.outbox_id, 'retry'))
        : [
            requireDead(
              (await query<TargetRow>(client, `${DEAD_TARGET_SQL} WHERE outbox_id = ? FOR UPDATE`, [which]))[0],
              which,
              'retry',
            ),
          ];
    for (const target of targets) await query(client, RETRY_SQL, [now.toISOString(), target.outbox_id]);
    return targets;
  });
}

/** As dropDead (dead.ts): deletes the dead notification `outboxId`. */
export function dropDeadPg(url: string, outboxId: number): Promise<DeadTarget> {
  return inTransaction(url, async (client) => {
    const [row] = await query<TargetRow>(client, `${DEAD_TARGET_SQL} WHERE outbox_id = ? FOR UPDATE`, [outboxId]);
    const target = requireDead(row, outboxId, 'drop');
    await query(client, DROP_SQL, [outboxId]);
    return target;
  });
}
