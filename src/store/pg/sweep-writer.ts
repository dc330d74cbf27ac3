/**
 * The Postgres writer of one sweep: the same decisions as the SQLite store (src/store/history-store.ts)
 * — the clock check, the diff, the mass-removal and erosion guards, the plan (src/history/sweep-plan.ts)
 * — applied in one fenced transaction (LeaderLease.writeTransaction): either the whole sweep is
 * stored under the writer's leadership epoch, or nothing is.
 *
 * Unlike the SQLite store it keeps no copy of the current versions between sweeps: another collector
 * may have led in between, so it reads them inside the transaction, after the fence.
 *
 * Not yet used by tierwatch (Postgres is not selectable yet); test/pg-sweep-writer.test.ts holds
 * it to the SQLite store's answers.
 */
import type pg from 'pg';
import { TierwatchError } from '../../errors.ts';
import { CurrentTiers, type CurrentVersion } from '../../history/current-tiers.ts';
import { diffTiers } from '../../history/diff.ts';
import { checkClock, checkErosion, checkSweepGuards, EROSION_WINDOW_MS } from '../../history/guards.ts';
import { planSweep, type SweepPlan } from '../../history/sweep-plan.ts';
import {
  type RunFailure,
  type StartRunInput,
  type SweepInput,
  type SweepOutcome,
} from '../history-store.ts';
import type { LeaderLease } from './lease.ts';

/** Rows per INSERT: big sweeps stay within the write transaction's statement limit. */
const OPEN_BATCH = 5000;
const MAX_ERROR_MESSAGE_LENGTH = 4000;

function storeError(error: unknown, doing: string): unknown {
  if (error instanceof TierwatchError) return error;
  return new TierwatchError('DB_WRITE_FAILED', `Postgres refused ${doing}: ${(error as Error).message}`, {
    cause: error,
  });
}

export class PgSweepWriter {
  readonly #lease: LeaderLease;

  /** Writes through `lease`: every call is a fenced transaction, refused with DB_LEADERSHIP_LOST when we do not lead. */
  constructor(lease: LeaderLease) {
    this.#lease = lease;
  }

  /** Inserts a 'running' ledger row and returns its run_id. */
  async startRun(input: StartRunInput): Promise<number> {
    try {
      return await this.#lease.writeTransaction(async (client) => {
        const result = await client.query<{ run_id: number }>(
          `INSERT INTO run_ledger (account_id, endpoint, public_key, started_at, status) VALUES ($1, $2, $3, $4, 'running') RETURNING run_id`,
          [input.accountId, input.endpoint, input.publicKey, input.startedAt.toISOString()],
        );
        return result.rows[0]!.run_id;
      });
    } catch (error) {
      throw storeError(error, `starting a run for account ${input.accountId}`);
    }
  }

  /** Records a run's failure, as the SQLite store does; a run no longer 'running' is left alone. */
  async failRun(runId: number, failure: RunFailure): Promise<void> {
    const message =
      failure.message.length > MAX_ERROR_MESSAGE_LENGTH
        ? `${failure.message.slice(0, MAX_ERROR_MESSAGE_LENGTH)}…`
        : failure.message;
    try {
      await this.#lease.writeTransaction(async (client) => {
        await client.query(
          `UPDATE run_ledger SET status = $1, error_code = $2, error_message = $3, pages = $4, finished_at = $5, observed_at = $6
            WHERE run_id = $7 AND status = 'running'`,
          [
            failure.status,
            failure.code,
            message,
            failure.pages,
            failure.finishedAt.toISOString(),
            failure.observedAt ? failure.observedAt.toISOString() : null,
            runId,
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
    try {
      return await this.#lease.writeTransaction((client) => this.#writeSweep(client, runId, sweep));
    } catch (error) {
      throw storeError(error, `storing run ${runId}`);
    }
  }

  async #writeSweep(client: pg.PoolClient, runId: number, sweep: SweepInput): Promise<SweepOutcome> {
    const { accountId } = sweep;
    const observedAt = sweep.observedAt.toISOString();
    const run = (
      await client.query<{ account_id: string; status: string }>(
        'SELECT account_id, status FROM run_ledger WHERE run_id = $1 FOR UPDATE',
        [runId],
      )
    ).rows[0];
    if (run === undefined) throw new TierwatchError('INTERNAL', `run ${runId} does not exist`);
    if (run.account_id !== accountId)
      throw new TierwatchError('INTERNAL', `run ${runId} belongs to account ${run.account_id}, not ${accountId}`);
    if (run.status !== 'running') throw new TierwatchError('INTERNAL', `run ${runId} is ${run.status}, not running`);

    const last = await client.query<{ observed_at: string | null }>(
      `SELECT max(observed_at) AS observed_at FROM run_ledger WHERE status = 'ok' AND account_id = $1`,
      [accountId],
    );
    const lastObservedAt = last.rows[0]?.observed_at ?? null;
    checkClock({ runId, accountId, observedAt, lastObservedAt });

    const currentRows = await client.query<CurrentVersion>(
      `SELECT version_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id
         FROM tier_version WHERE valid_to IS NULL AND account_id = $1`,
      [accountId],
    );
    const current = CurrentTiers.from(currentRows.rows);
    const diff = diffTiers(current, sweep.tiers);
    checkSweepGuards({ accountId, current: current.size, diff, maxRemovalRatio: sweep.maxRemovalRatio });
    const windowStart = new Date(sweep.observedAt.getTime() - EROSION_WINDOW_MS).toISOString();
    const recent = await client.query<{ tiers: number }>(
      `SELECT coalesce(tiers, 0) AS tiers FROM run_ledger WHERE status = 'ok' AND account_id = $1 AND observed_at >= $2 ORDER BY observed_at, run_id`,
      [accountId, windowStart],
    );
    checkErosion({
      accountId,
      tiers: sweep.tiers.length,
      recentCounts: recent.rows.map((row) => row.tiers),
      maxRemovalRatio: sweep.maxRemovalRatio,
    });

    const plan = planSweep({ runId, accountId, observedAt, diff });
    await applyPlan(client, plan, runId, accountId, sweep.observedAt.getTime());
    const baseline = lastObservedAt === null;
    const finished = await client.query(
      `UPDATE run_ledger SET status = 'ok', observed_at = $1, finished_at = $2, pages = $3, tiers = $4, changes = $5, baseline = $6
        WHERE run_id = $7 AND status = 'running'`,
      [
        observedAt,
        sweep.finishedAt.toISOString(),
        sweep.pages,
        sweep.tiers.length,
        plan.changes.length,
        baseline ? 1 : 0,
        runId,
      ],
    );
    if (finished.rowCount !== 1) throw new TierwatchError('INTERNAL', `run ${runId} could not be marked ok`);
    return {
      added: diff.added.length,
      removed: diff.removed.length,
      changed: diff.changed.length,
      changes: plan.changes,
      baseline,
    };
  }
}

/** Closes and opens the plan's versions at `observedMs`; throws INTERNAL when a version to close was not open. */
async function applyPlan(
  client: pg.PoolClient,
  plan: SweepPlan,
  runId: number,
  accountId: string,
  observedMs: number,
): Promise<void> {
  if (plan.close.length > 0) {
    const ids = plan.close.map((version) => version.version_id);
    const closed = await client.query(
      'UPDATE tier_version SET valid_to = $1 WHERE version_id = ANY ($2::bigint[]) AND valid_to IS NULL',
      [observedMs, ids],
    );
    if (closed.rowCount !== ids.length)
      throw new TierwatchError(
        'INTERNAL',
        `${ids.length - (closed.rowCount ?? 0)} of the tier versions to close were not open`,
      );
  }
  for (let start = 0; start < plan.open.length; start += OPEN_BATCH) {
    const batch = plan.open.slice(start, start + OPEN_BATCH);
    // One statement per batch; WITH ORDINALITY keeps the plan's order, so ids follow it as on SQLite.
    await client.query(
      `INSERT INTO tier_version (account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id, valid_from, run_id, prev_version_id)
       SELECT $1::text, s, l, im, mm, mn, x, $2::bigint, $3::bigint, p
         FROM unnest($4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::text[], $10::bigint[]) WITH ORDINALITY AS t(s, l, im, mm, mn, x, p, n)
        ORDER BY n`,
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
  }
}
