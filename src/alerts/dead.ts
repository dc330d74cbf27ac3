/**
 * What an operator does with a dead notification (one delivery gave up on): send it again
 * (`tierwatch alerts retry`) or forget it (`tierwatch alerts drop`). Runs on the writer's
 * connection, under the writer lock, so it never races the daemon's delivery.
 */
import { TierwatchError } from '../errors.ts';
import type { StoreDb } from '../store/db.ts';

export interface DeadTarget {
  outbox_id: number;
  kind: string;
  run_id: number | null;
  dead_reason: string | null;
}

/** The columns an operator's action reads and reports (shared with the Postgres version, pg-dead.ts). */
export const DEAD_TARGET_SQL = 'SELECT outbox_id, kind, run_id, status, dead_reason FROM alert_outbox';

/** `row` (the notification `outboxId`) if it is dead, or USAGE naming what is wrong (unknown id, or not dead). */
export function requireDead(
  row: (DeadTarget & { status: string }) | undefined,
  outboxId: number,
  verb: 'retry' | 'drop',
): DeadTarget {
  if (row === undefined) {
    throw new TierwatchError(
      'USAGE',
      `There is no notification ${outboxId} in the outbox; \`tierwatch alerts\` lists them.`,
    );
  }
  if (row.status !== 'dead') {
    throw new TierwatchError(
      'USAGE',
      `Notification ${outboxId} is ${row.status}, not dead: only a dead notification can be given to \`alerts ${verb}\`.`,
    );
  }
  const { status: _status, ...target } = row;
  return target;
}

/** Back to pending (created_at = the retry time, then the id); only while it is dead. */
export const RETRY_SQL = `UPDATE alert_outbox SET status = 'pending', attempts = 0, created_at = ?, dead_at = NULL, dead_reason = NULL WHERE outbox_id = ? AND status = 'dead'`;
/** Deletes one notification (by id) while it is dead. */
export const DROP_SQL = `DELETE FROM alert_outbox WHERE outbox_id = ? AND status = 'dead'`;

function deadRow(db: StoreDb, outboxId: number, verb: 'retry' | 'drop'): DeadTarget {
  const row = db.sqlite
    .prepare<[number], DeadTarget & { status: string }>(`${DEAD_TARGET_SQL} WHERE outbox_id = ?`)
    .get(outboxId);
  return requireDead(row, outboxId, verb);
}

/**
 * Puts dead notifications back in their queue: pending, attempts counted from zero, and queued
 * anew at `now` (so TIERWATCH_WEBHOOK_MAX_AGE counts from the retry). A retried notification keeps
 * its place by id: it goes before the later pending ones of its URL. `'dead'` retries them all.
 */
export function retryDead(db: StoreDb, which: number | 'dead', now: Date): DeadTarget[] {
  return db.sqlite
    .transaction(() => {
      const targets =
        which === 'dead'
          ? db.sqlite
              .prepare<[], DeadTarget>(
                `SELECT outbox_id, kind, run_id, dead_reason FROM alert_outbox WHERE status = 'dead' ORDER BY outbox_id`,
              )
              .all()
          : [deadRow(db, which, 'retry')];
      const update = db.sqlite.prepare<[string, number]>(RETRY_SQL);
      for (const target of targets) update.run(now.toISOString(), target.outbox_id);
      return targets;
    })
    .immediate();
}

/** Deletes one dead notification from the outbox. */
export function dropDead(db: StoreDb, outboxId: number): DeadTarget {
  return db.sqlite
    .transaction(() => {
      const target = deadRow(db, outboxId, 'drop');
      db.sqlite.prepare<[number]>(DROP_SQL).run(outboxId);
      return target;
    })
    .immediate();
}
