/**
 * The Postgres writer of one sweep: the same decisions as the SQLite store (src/store/history-store.ts)
 * — the clock check, the diff, the mass-removal and erosion guards, the plan (src/history/sweep-plan.ts)
 * — applied in one fenced transaction (LeaderLease.writeTransaction): either the whole sweep is
 * stored under the writer's leadership epoch, or nothing is.
 *
 * Like the SQLite store it keeps each account's current versions (and its last observed instant,
 * and the recent sweeps' tier counts the erosion guard needs) in memory between sweeps, because
 * reading 100,000 rows back costs more than the rest of a sweep. The fence is what makes that safe:
 * a write transaction proves, before anything else, that our epoch is still current; epochs only
 * grow, and only the holder of the current epoch can commit. So while the epoch is the one our copy
 * was made under, nobody else has committed to the history since, and the copy — which we only
 * update after our own COMMIT succeeded — is what the database holds. Under a new epoch (another
 * collector may have led in between) the copy is read afresh inside the transaction, after the
 * fence; and after any failed sweep it is dropped (a COMMIT whose outcome is unknown leaves doubt).
 * The copy is shared by every writer on the same lease, and their sweeps run one at a time. The
 * premise is that nothing writes tier_version or a run's 'ok' outside a fenced transaction: a
 * future command that rewrites the history (a rewind, an import) must take the lease itself, which
 * bumps the epoch and so makes the collector reload.
 *
 * Every run row it writes records the epoch it was written under (`runs.leader_epoch`: the epoch
 * that started the run, then the one that finished it), so the history shows which leader stored what.
 *
 * No prepared statements by name: PgBouncer in transaction mode (which the lease supports) hands
 * each transaction any server session, where the name may not exist.
 *
 * The collector uses it through PgSweepStore (sweep-store.ts); test/pg-sweep-writer.test.ts holds
 * it to the SQLite store's answers, and shows that a takeover between sweeps forces a reload.
 */
import type pg from 'pg';
import { TierwatchError } from '../../errors.ts';
import { CurrentTiers, type CurrentVersion } from '../../history/current-tiers.ts';
import { diffTiers } from '../../history/diff.ts';
import { checkClock, checkErosion, checkSweepGuards, EROSION_WINDOW_MS } from '../../history/guards.ts';
import { planSweep, type SweepPlan } from '../../history/sweep-plan.ts';
import {
  storedErrorMessage,
  type RunFailure,
  type StartRunInput,
  type StoredSweep,
  type SweepInput,
  type SweepOutcome,
} from '../history-store-types.ts';

/**
 * Called inside every sweep transaction, after the sweep's writes and before COMMIT, on its session
 * (as SweepHook on SQLite): what it writes commits with the sweep, under the same fence, and what it
 * throws rolls the sweep back. The alert outbox is written from here.
 */
export type PgSweepHook = (client: pg.PoolClient, stored: StoredSweep) => Promise<void>;
import type { LeaderLease } from './lease.ts';

/** What the writer keeps per account between sweeps, valid only under `epoch`. */
interface AccountState {
  /** The leadership epoch under which this copy matched the database. */
  epoch: number;
  versions: CurrentTiers;
  /** observed_at of the account's last successful sweep: the next one must be later. */
  lastObservedAt: string | null;
  /** The successful sweeps' tier counts in order, from a day before lastObservedAt on (a superset of any next window). */
  recent: Array<{ observedAt: string; tiers: number }>;
}

/** The copies of one lease's writers, and the tail of their queue of sweeps. */
interface WriterCache {
  accounts: Map<string, AccountState>;
  queue: Promise<unknown>;
}

/** Per lease, so two writers on one lease cannot keep diverging copies. */
const CACHES = new WeakMap<LeaderLease, WriterCache>();

/** What one sweep wrote, applied to the in-memory copy only after COMMIT succeeded. */
interface SweepWrite {
  outcome: SweepOutcome;
  state: AccountState;
  closed: CurrentVersion[];
  opened: CurrentVersion[];
  observedAt: string;
  recent: AccountState['recent'];
}

/** Rows per INSERT: big sweeps stay within the write transaction's statement limit. */
const OPEN_BATCH = 5000;

/** A run id as SQL text (it goes into the fence's round trip, which takes no parameters). */
function sqlInteger(value: number): string {
  if (!Number.isSafeInteger(value)) {
    throw new TierwatchError('INTERNAL', `run id ${value} is not an integer (this is a bug)`);
  }
  return String(value);
}

function storeError(error: unknown, doing: string): unknown {
  if (error instanceof TierwatchError) return error;
  return new TierwatchError('DB_WRITE_FAILED', `Postgres refused ${doing}: ${(error as Error).message}`, {
    cause: error,
  });
}

export class PgSweepWriter {
  readonly #lease: LeaderLease;
  readonly #cache: WriterCache;
  #hook: PgSweepHook | null = null;

  /** Writes through `lease`: every call is a fenced transaction, refused with DB_LEADERSHIP_LOST when we do not lead. */
  constructor(lease: LeaderLease) {
    this.#lease = lease;
    let cache = CACHES.get(lease);
    if (cache === undefined) {
      cache = { accounts: new Map(), queue: Promise.resolve() };
      CACHES.set(lease, cache);
    }
    this.#cache = cache;
  }

  /** Sets (or, with null, removes) the hook every later sweep transaction calls; see PgSweepHook. */
  setSweepHook(hook: PgSweepHook | null): void {
    this.#hook = hook;
  }

  /** Inserts a 'running' ledger row and returns its run_id. */
  async startRun(input: StartRunInput): Promise<number> {
    try {
      return await this.#lease.writeTransaction(async (client, epoch) => {
        const result = await client.query<{ run_id: number }>(
          `INSERT INTO run_ledger (account_id, endpoint, public_key, started_at, status, leader_epoch) VALUES ($1, $2, $3, $4, 'running', $5) RETURNING run_id`,
          [input.accountId, input.endpoint, input.publicKey, input.startedAt.toISOString(), epoch],
        );
        return result.rows[0]!.run_id;
      });
    } catch (error) {
      throw storeError(error, `starting a run for account ${input.accountId}`);
    }
  }

  /** Records a run's failure, as the SQLite store does; a run no longer 'running' is left alone. */
  async failRun(runId: number, failure: RunFailure): Promise<void> {
    const message = storedErrorMessage(failure.message);
    try {
      await this.#lease.writeTransaction(async (client, epoch) => {
        await client.query(
          `UPDATE run_ledger SET status = $1, error_code = $2, error_message = $3, pages = $4, finished_at = $5, observed_at = $6, leader_epoch = $8
            WHERE run_id = $7 AND status = 'running'`,
          [
            failure.status,
            failure.code,
            message,
            failure.pages,
            failure.finishedAt.toISOString(),
            failure.observedAt ? failure.observedAt.toISOString() : null,
            runId,
            epoch,
          ],
        );
      });
    } catch (error) {
      throw storeError(error, `recording the failure of run ${runId}`);
    }
  }

  /**
   * Stores a complete sweep of one account in one fenced transaction and marks the run ok. Throws,
   * having stored nothing, what the SQLite store throws (CLOCK_BEHIND, MASS_REMOVAL, INTERNAL), plus
   * DB_LEADERSHIP_LOST when another collector leads, DB_WRITE_FAILED when Postgres refuses.
   */
  async commitSweep(runId: number, sweep: SweepInput): Promise<SweepOutcome> {
    // One sweep at a time: a second one must see the copy the first updated after its COMMIT.
    const turn = this.#cache.queue.then(() => this.#commitSweep(runId, sweep));
    this.#cache.queue = turn.catch(() => {});
    return turn;
  }

  async #commitSweep(runId: number, sweep: SweepInput): Promise<SweepOutcome> {
    const { accounts } = this.#cache;
    let write: SweepWrite;
    try {
      // The run's row is read (and locked) in the fence's round trip.
      write = await this.#lease.writeTransaction(
        (client, epoch, runRows) => this.#writeSweep(client, epoch, runId, sweep, runRows),
        { prelude: `SELECT account_id, status FROM run_ledger WHERE run_id = ${sqlInteger(runId)} FOR UPDATE` },
      );
    } catch (error) {
      accounts.delete(sweep.accountId);
      throw storeError(error, `storing run ${runId}`);
    }
    const { state, closed, opened } = write;
    for (const version of closed) state.versions.delete(version.symbol, version.leverage);
    for (const version of opened) state.versions.set(version);
    state.lastObservedAt = write.observedAt;
    state.recent = write.recent;
    accounts.set(sweep.accountId, state);
    return write.outcome;
  }

  async #writeSweep(
    client: pg.PoolClient,
    epoch: number,
    runId: number,
    sweep: SweepInput,
    runRows: pg.QueryResult | null,
  ): Promise<SweepWrite> {
    const { accountId } = sweep;
    const observedAt = sweep.observedAt.toISOString();
    const run = runRows?.rows[0] as { account_id: string; status: string } | undefined;
    if (run === undefined) throw new TierwatchError('INTERNAL', `run ${runId} does not exist`);
    if (run.account_id !== accountId) {
      throw new TierwatchError('INTERNAL', `run ${runId} belongs to account ${run.account_id}, not ${accountId}`);
    }
    if (run.status !== 'running') throw new TierwatchError('INTERNAL', `run ${runId} is ${run.status}, not running`);

    // Kept from our last sweep while the fence proved our epoch unchanged; read afresh otherwise.
    const cached = this.#cache.accounts.get(accountId);
    const state = cached !== undefined && cached.epoch === epoch ? cached : await loadState(client, epoch, accountId);
    checkClock({ runId, accountId, observedAt, lastObservedAt: state.lastObservedAt });

    const diff = diffTiers(state.versions, sweep.tiers);
    checkSweepGuards({ accountId, current: state.versions.size, diff, maxRemovalRatio: sweep.maxRemovalRatio });
    const windowStart = new Date(sweep.observedAt.getTime() - EROSION_WINDOW_MS).toISOString();
    const recent = state.recent.filter((sweepCount) => sweepCount.observedAt >= windowStart);
    checkErosion({
      accountId,
      tiers: sweep.tiers.length,
      recentCounts: recent.map((sweepCount) => sweepCount.tiers),
      maxRemovalRatio: sweep.maxRemovalRatio,
    });

    const plan = planSweep({ runId, accountId, observedAt, diff });
    const opened = await applyPlan(client, plan, runId, accountId, sweep.observedAt.getTime());
    const baseline = state.lastObservedAt === null;
    const finished = await client.query(
      `UPDATE run_ledger SET status = 'ok', observed_at = $1, finished_at = $2, pages = $3, tiers = $4, changes = $5, baseline = $6, leader_epoch = $8
        WHERE run_id = $7 AND status = 'running'`,
      [
        observedAt,
        sweep.finishedAt.toISOString(),
        sweep.pages,
        sweep.tiers.length,
        plan.changes.length,
        baseline ? 1 : 0,
        runId,
        epoch,
      ],
    );
    if (finished.rowCount !== 1) throw new TierwatchError('INTERNAL', `run ${runId} could not be marked ok`);
    await this.#hook?.(client, { runId, accountId, observedAt, changes: plan.changes, baseline });
    recent.push({ observedAt, tiers: sweep.tiers.length });
    return {
      outcome: {
        added: diff.added.length,
        removed: diff.removed.length,
        changed: diff.changed.length,
        changes: plan.changes,
        baseline,
      },
      state,
      closed: plan.close,
      opened,
      observedAt,
      recent,
    };
  }
}

/**
 * The account's state as stored: its open versions, the observed_at of its last successful sweep,
 * and the tier counts of its successful sweeps from a day before that one on (the erosion window
 * of any later sweep starts after that: a later sweep must be observed after the last one).
 */
async function loadState(client: pg.PoolClient, epoch: number, accountId: string): Promise<AccountState> {
  const currentRows = await client.query<CurrentVersion>(
    `SELECT version_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id
       FROM tier_version WHERE valid_to IS NULL AND account_id = $1`,
    [accountId],
  );
  const okRows = await client.query<{ observed_at: string; tiers: number }>(
    `SELECT r.observed_at, coalesce(r.tiers, 0) AS tiers
       FROM run_ledger r,
            (SELECT max(observed_at) AS t FROM run_ledger WHERE status = 'ok' AND account_id = $1) AS last
      WHERE r.status = 'ok' AND r.account_id = $1 AND r.observed_at >= last.t - $2 * interval '1 millisecond'
      ORDER BY r.observed_at, r.run_id`,
    [accountId, EROSION_WINDOW_MS],
  );
  const recent = okRows.rows.map((row) => ({ observedAt: row.observed_at, tiers: row.tiers }));
  return {
    epoch,
    versions: CurrentTiers.from(currentRows.rows),
    lastObservedAt: recent.at(-1)?.observedAt ?? null,
    recent,
  };
}

/**
 * Closes and opens the plan's versions at `observedMs` and returns the opened versions; throws
 * INTERNAL when a version to close was not open.
 */
async function applyPlan(
  client: pg.PoolClient,
  plan: SweepPlan,
  runId: number,
  accountId: string,
  observedMs: number,
): Promise<CurrentVersion[]> {
  if (plan.close.length > 0) {
    const ids = plan.close.map((version) => version.version_id);
    const closed = await client.query(
      'UPDATE tier_version SET valid_to = $1 WHERE version_id = ANY ($2::bigint[]) AND valid_to IS NULL',
      [observedMs, ids],
    );
    if (closed.rowCount !== ids.length) {
      throw new TierwatchError(
        'INTERNAL',
        `${ids.length - (closed.rowCount ?? 0)} of the tier versions to close were not open`,
      );
    }
  }
  const opened: CurrentVersion[] = [];
  for (let start = 0; start < plan.open.length; start += OPEN_BATCH) {
    const batch = plan.open.slice(start, start + OPEN_BATCH);
    // One statement per batch; WITH ORDINALITY keeps the plan's order, so ids follow it as on SQLite.
    // The new ids come back with their identity: RETURNING's row order is not a documented promise.
    const inserted = await client.query<{ version_id: number; symbol: string; leverage: string }>(
      `INSERT INTO tier_version (account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id, valid_from, run_id, prev_version_id)
       SELECT $1::text, s, l, im, mm, mn, x, $2::bigint, $3::bigint, p
         FROM unnest($4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::text[], $10::bigint[]) WITH ORDINALITY AS t(s, l, im, mm, mn, x, p, n)
        ORDER BY n
       RETURNING version_id, symbol, leverage`,
      [
        accountId,
        observedMs,
        runId,
        batch.map((o) => o.tier.symbol),
        batch.map((o) => o.tier.leverage),
        batch.map((o) => o.tier.initial_margin),
        batch.map((o) => o.tier.maintenance_margin),
        batch.map((o) => o.tier.max_notional),
        batch.map((o) => o.tier.exchange_id),
        batch.map((o) => o.previous?.version_id ?? null),
      ],
    );
    const ids = new Map<string, Map<string, number>>();
    for (const row of inserted.rows) {
      const ladder = ids.get(row.symbol) ?? new Map<string, number>();
      ids.set(row.symbol, ladder.set(row.leverage, row.version_id));
    }
    for (const { tier } of batch) {
      const id = ids.get(tier.symbol)?.get(tier.leverage);
      if (id === undefined) {
        throw new TierwatchError('INTERNAL', `no version id came back for ${tier.symbol} ${tier.leverage}`);
      }
      opened.push({
        version_id: id,
        symbol: tier.symbol,
        leverage: tier.leverage,
        initial_margin: tier.initial_margin,
        maintenance_margin: tier.maintenance_margin,
        max_notional: tier.max_notional,
        exchange_id: tier.exchange_id,
      });
    }
  }
  return opened;
}
