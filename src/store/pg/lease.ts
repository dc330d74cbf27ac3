/**
 * Leadership among several collectors sharing one Postgres history: a lease with fencing.
 *
 * The lease is a row of `leader_lease` (holder, epoch, expires_at), judged by the DATABASE's clock
 * (`clock_timestamp()`), never by a host's: hosts' clocks may disagree, the database's is the one
 * both sides of a takeover read. It is a row and not a session advisory lock because a frozen
 * leader (SIGSTOP) or one cut off by the network keeps its session — and a session lock — for as
 * long as TCP takes to notice (up to hours), and PgBouncer in transaction mode cannot hold one.
 *
 * - acquire: take the row when it is free or expired; each takeover adds one to the epoch, which
 *   never goes back (a release keeps it).
 * - renew: push expires_at forward, only for our own holder AND epoch AND while still live.
 * - release: expire the lease now, so a standby takes over at its next attempt, not after the TTL.
 * - fencing (`writeTransaction`): every write transaction FIRST renews the lease for its own epoch;
 *   when that updates no row (another collector took over, or our lease ran out) the transaction
 *   writes nothing and fails with DB_LEADERSHIP_LOST. The renewal holds the lease row's lock until
 *   COMMIT, so no takeover can slip in between the check and the commit: a stale leader can never
 *   commit. A takeover therefore waits for a leader's open transaction to end, and the transaction's
 *   own limits bound that wait: `statement_timeout` and `idle_in_transaction_session_timeout`
 *   (`writeTimeoutMs`, set per transaction so they work through a transaction-mode pooler) make the
 *   server end a transaction whose leader froze or vanished mid-way, rolling it back.
 *
 * How long a standby needs to take over (the settings below): a leader that dies, freezes or loses
 * the network stops renewing; its lease ends at most `ttlMs` after its last renewal, and a standby
 * that tries every `pollEveryMs` takes over within ttlMs + pollEveryMs = 15 + 5 = 20 s. A leader
 * frozen inside a write transaction: the server ends that transaction at most 2 × writeTimeoutMs
 * (a last statement, then the idle limit) = 10 s after its renewal, before the lease ends, so the
 * same 20 s hold. A graceful stop releases the lease: the next attempt of a standby succeeds.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { TierwatchError } from '../../errors.ts';

/** The one lease collectors contend for (the row's `name`). */
export const COLLECTOR_LEASE = 'collector';

export interface LeaseSettings {
  /** A lease not renewed for this long ends (by the database's clock). */
  ttlMs: number;
  /** A leader renews this often (writes renew too). Keep it well under ttlMs: a few renewals may fail. */
  renewEveryMs: number;
  /** A standby tries to take over this often. */
  pollEveryMs: number;
  /** Bounds each statement of a write transaction and its idle gaps; keep 2 × writeTimeoutMs < ttlMs. */
  writeTimeoutMs: number;
  /** How long an attempt to take over waits for a leader's open transaction before trying again later. */
  acquireLockWaitMs: number;
}

/** The defaults: a standby takes over within ttlMs + pollEveryMs = 20 s (see the module comment). */
export const DEFAULT_LEASE_SETTINGS: Readonly<LeaseSettings> = Object.freeze({
  ttlMs: 15_000,
  renewEveryMs: 5_000,
  pollEveryMs: 5_000,
  writeTimeoutMs: 5_000,
  acquireLockWaitMs: 2_000,
});

/** The lease row as stored. Times are ISO-8601 text (the connection's parsers), by the database's clock. */
export interface LeaseRow {
  name: string;
  holder: string;
  epoch: number;
  acquired_at: string;
  renewed_at: string;
  expires_at: string;
  /** Whether expires_at is still ahead of the database's clock. */
  live: boolean;
}

export interface LeaderLeaseOptions {
  /** Who we are, as recorded in the row; unique per process by default (host, pid, random). */
  holder?: string;
  name?: string;
  settings?: Partial<LeaseSettings>;
}

/** A transaction that may write: runs after the fencing renewal, on the same session. */
export type FencedWork<T> = (client: pg.PoolClient, epoch: number, prelude: pg.QueryResult | null) => Promise<T>;

export interface WriteTransactionOptions {
  /**
   * One READ-ONLY statement sent in the same round trip as the fence, its result handed to the
   * work (a round trip saved per transaction). SQL text only, no parameters (it travels in a
   * multi-statement simple query): build it from integers or escaped literals.
   */
  prelude?: string;
}

const LOCK_NOT_AVAILABLE = '55P03';

function defaultHolder(): string {
  return `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

function describeHolder(holder: string, epoch: number | null, current: LeaseRow | null | undefined): string {
  if (current === undefined) return 'the lease could not be read';
  if (current === null) return 'nobody holds it';
  if (current.holder === holder && current.epoch === epoch) return 'our lease ran out before this write';
  return `${current.holder} holds it under epoch ${current.epoch}`;
}

function lost(
  name: string,
  holder: string,
  epoch: number | null,
  current: LeaseRow | null | undefined,
  cause?: unknown,
): TierwatchError {
  return new TierwatchError(
    'DB_LEADERSHIP_LOST',
    `This collector (${holder}) no longer leads: its lease "${name}" (epoch ${epoch ?? 'none'}) is not current (${describeHolder(holder, epoch, current)}); the transaction wrote nothing.`,
    { cause, details: { holder, epoch, current: current ? { holder: current.holder, epoch: current.epoch } : null } },
  );
}

/**
 * One collector's side of the lease. Uses sessions from `pool` for each call and never ends it (its
 * creator does). Not safe for concurrent calls of acquire/renew/release on one object: the
 * leadership loop makes them one at a time; write transactions may run beside them.
 */
export class LeaderLease {
  readonly holder: string;
  readonly name: string;
  readonly settings: Readonly<LeaseSettings>;
  readonly #pool: pg.Pool;
  #epoch: number | null = null;

  constructor(pool: pg.Pool, options: LeaderLeaseOptions = {}) {
    this.#pool = pool;
    this.holder = options.holder ?? defaultHolder();
    this.name = options.name ?? COLLECTOR_LEASE;
    this.settings = Object.freeze({ ...DEFAULT_LEASE_SETTINGS, ...options.settings });
  }

  /** The epoch we believe we hold, or null. Only a fenced write proves it. */
  get epoch(): number | null {
    return this.#epoch;
  }

  /** Forgets the epoch without touching the database: we step down by our own judgement (see leadership.ts). */
  forget(): void {
    this.#epoch = null;
  }

  /** The lease row as the database sees it now, or null before anyone took it. */
  async current(): Promise<LeaseRow | null> {
    const result = await this.#pool.query<LeaseRow>(
      `SELECT name, holder, epoch, acquired_at, renewed_at, expires_at, expires_at > clock_timestamp() AS live
         FROM leader_lease WHERE name = $1`,
      [this.name],
    );
    return result.rows[0] ?? null;
  }

  /**
   * Takes the lease when it is free, expired or released, with the next epoch, and returns that
   * epoch; renews it when we hold it already. Returns null when another holder's lease is live, or
   * when a leader's open transaction holds the row longer than acquireLockWaitMs (try again later).
   * Database errors propagate.
   */
  async tryAcquire(): Promise<number | null> {
    if (this.#epoch !== null && (await this.renew())) return this.#epoch;
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${this.settings.acquireLockWaitMs}ms`]);
      const result = await client.query<{ epoch: number }>(
        `INSERT INTO leader_lease AS l (name, holder, epoch, acquired_at, renewed_at, expires_at)
         VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp(), clock_timestamp() + $3 * interval '1 millisecond')
         ON CONFLICT (name) DO UPDATE
            SET holder = excluded.holder, epoch = l.epoch + 1, acquired_at = excluded.acquired_at,
                renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
          WHERE l.expires_at <= clock_timestamp()
         RETURNING epoch`,
        [this.name, this.holder, this.settings.ttlMs],
      );
      await client.query('COMMIT');
      this.#epoch = result.rows[0]?.epoch ?? null;
      return this.#epoch;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      if ((error as { code?: string }).code === LOCK_NOT_AVAILABLE) return null;
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * Extends our lease by ttlMs from now (database clock). Returns false, and forgets the epoch,
   * when we do not hold it any more (taken over, or expired). Database errors propagate and leave
   * the epoch as it was: the lease may still be ours until it expires.
   */
  async renew(): Promise<boolean> {
    if (this.#epoch === null) return false;
    const result = await this.#pool.query(
      `UPDATE leader_lease SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $4 * interval '1 millisecond'
        WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
      [this.name, this.holder, this.#epoch, this.settings.ttlMs],
    );
    if (result.rowCount === 1) return true;
    this.#epoch = null;
    return false;
  }

  /**
   * Ends our lease now (a graceful stop), so a standby's next attempt takes over at once. The row
   * keeps its epoch: the next holder's is higher. Idempotent; a no-op when we do not hold it.
   */
  async release(): Promise<void> {
    const epoch = this.#epoch;
    this.#epoch = null;
    if (epoch === null) return;
    // Truncated, not rounded, to the column's milliseconds: a rounded-up instant would leave the
    // lease live for up to half a millisecond more.
    await this.#pool.query(
      `UPDATE leader_lease SET expires_at = date_trunc('milliseconds', clock_timestamp()) WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
      [this.name, this.holder, epoch],
    );
  }

  /**
   * Runs `work` in one transaction that first renews our lease for our own epoch, and commits.
   * Throws DB_LEADERSHIP_LOST, having written nothing, when we do not hold the lease (no epoch, or
   * the renewal updated no row), or when the session died mid-transaction and the lease is no
   * longer ours (e.g. we froze, the server ended the transaction, a standby took over). Whatever
   * `work` throws rolls the transaction back and is rethrown. Other database errors propagate.
   */
  async writeTransaction<T>(work: FencedWork<T>, options: WriteTransactionOptions = {}): Promise<T> {
    const epoch = this.#epoch;
    if (epoch === null) throw lost(this.name, this.holder, null, await this.current().catch(() => undefined));
    const client = await this.#pool.connect();
    // A checked-out session the server ends emits 'error' on the client: keep it from crashing the
    // process; the statement waiting on it fails and is handled below.
    let sessionError: unknown = null;
    const onError = (error: unknown): void => {
      sessionError = error;
    };
    client.on('error', onError);
    let open = false;
    let released = false;
    const release = (destroy: boolean): void => {
      if (released) return;
      released = true;
      client.removeListener('error', onError);
      client.release(destroy ? true : undefined);
    };
    try {
      // BEGIN, the limits and the fence in one round trip (a multi-statement simple query, so the
      // values are literals: the name and holder escaped by the driver, the numbers integers).
      open = true;
      const limit = client.escapeLiteral(`${Math.round(this.settings.writeTimeoutMs)}ms`);
      const results = (await client.query(
        `BEGIN ISOLATION LEVEL READ COMMITTED;
         SELECT set_config('statement_timeout', ${limit}, true), set_config('idle_in_transaction_session_timeout', ${limit}, true);
         UPDATE leader_lease SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + ${integer(Math.round(this.settings.ttlMs))} * interval '1 millisecond'
          WHERE name = ${client.escapeLiteral(this.name)} AND holder = ${client.escapeLiteral(this.holder)} AND epoch = ${integer(epoch)} AND expires_at > clock_timestamp();
         ${options.prelude ?? ''}`,
      )) as unknown as pg.QueryResult[];
      const fence = results[2]!;
      const prelude = options.prelude === undefined ? null : results[3]!;
      if (fence.rowCount !== 1) {
        await client.query('ROLLBACK');
        open = false;
        if (this.#epoch === epoch) this.#epoch = null;
        throw lost(this.name, this.holder, epoch, await this.current().catch(() => undefined));
      }
      const value = await work(client, epoch, prelude);
      await client.query('COMMIT');
      open = false;
      return value;
    } catch (error) {
      if (!open && sessionError === null) throw error;
      const sessionDied = sessionError !== null || !(await rollback(client));
      if (sessionDied) {
        // The server ended the transaction (rolled back). If the lease is no longer ours, that is
        // why, and the caller must stop writing; otherwise report the error as it is.
        release(true);
        // Unreadable (the database is unreachable): we cannot tell, so the original error stands.
        const current = await this.current().catch(() => undefined);
        if (
          current !== undefined &&
          (current === null || current.holder !== this.holder || current.epoch !== epoch || !current.live)
        ) {
          if (this.#epoch === epoch) this.#epoch = null;
          throw lost(this.name, this.holder, epoch, current, error);
        }
      }
      throw error;
    } finally {
      release(false);
    }
  }
}

/** An integer as SQL text; anything else is a bug (it would be spliced into a statement). */
function integer(value: number): string {
  if (!Number.isSafeInteger(value)) throw new TierwatchError('INTERNAL', `not an integer: ${value} (this is a bug)`);
  return String(value);
}

/** ROLLBACK on a session that may be dead; false when it is. */
async function rollback(client: pg.PoolClient): Promise<boolean> {
  try {
    await client.query('ROLLBACK');
    return true;
  } catch {
    return false;
  }
}
