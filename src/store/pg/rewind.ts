/**
 * `tierwatch rewind` on a Postgres history: the same discarding as on SQLite (src/store/rewind.ts:
 * the same runs chosen, the same refusals and ledger messages, the versions deleted and reopened
 * alike), in one fenced transaction under the collectors' leadership lease.
 *
 * Taking the lease is what makes rewriting the history safe beside collectors: a collector keeps the
 * current versions in memory while its epoch is unchanged (sweep-writer.ts); acquiring the lease
 * bumps the epoch, so whoever leads next reads them afresh instead of building on versions the
 * rewind deleted. While a daemon leads, the rewind is refused (DB_LEADER_ELSEWHERE) having changed
 * nothing: stop the daemons (or wait for a stopped leader's lease to run out), rewind, start them
 * again. A dry run only reads, in a read-only transaction, and needs no lease.
 */
import type pg from 'pg';
import { TierwatchError } from '../../errors.ts';
import {
  discardedMessage,
  nothingToDiscard,
  refusePastRuns,
  type DiscardedRun,
  type RewindInput,
  type RewindResult,
} from '../rewind.ts';
import type { PostgresUrl } from '../../config-database.ts';
import { resolveTime, type TimeSpec } from '../../query/time.ts';
import { RUN_INSTANT_SQL, type RunInstant } from '../../query/source.ts';
import { createPgPool } from './connection.ts';
import { LeaderLease, type LeaseSettings } from './lease.ts';
import { numberParameters } from './read-session.ts';

async function discard(client: pg.ClientBase, input: RewindInput): Promise<RewindResult> {
  const { after, accountId } = input;
  const runs = (
    await client.query<DiscardedRun>(
      `SELECT run_id, account_id, observed_at, tiers, changes FROM run_ledger
        WHERE status = 'ok' AND observed_at > $1 AND ($2::text IS NULL OR account_id = $2)
        ORDER BY account_id, observed_at, run_id`,
      [after, accountId],
    )
  ).rows;
  if (runs.length === 0) {
    const last = await client.query<{ at: string | null }>(
      `SELECT max(observed_at) AS at FROM run_ledger WHERE status = 'ok' AND ($1::text IS NULL OR account_id = $1)`,
      [accountId],
    );
    throw nothingToDiscard(input, last.rows[0]?.at ?? null);
  }
  const result: RewindResult = {
    runs,
    changesDeleted: 0,
    versionsDeleted: 0,
    versionsReopened: 0,
    dryRun: input.dryRun === true,
  };
  if (input.dryRun === true) return result;
  refusePastRuns(runs, input);
  // tier_version keeps epoch ms; the ledger's observed_at is an instant.
  const afterMs = Date.parse(after);
  const message = discardedMessage(input);
  const accounts = [...new Set(runs.map((run) => run.account_id))];
  for (const account of accounts) {
    const counted = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM tier_change_feed WHERE account_id = $1 AND observed_ms > $2',
      [account, afterMs],
    );
    result.changesDeleted += counted.rows[0]?.n ?? 0;
  }
  for (const run of runs) {
    const marked = await client.query(
      `UPDATE run_ledger SET status = 'failed', error_code = 'REWOUND', error_message = $1, baseline = 0 WHERE run_id = $2 AND status = 'ok'`,
      [message, run.run_id],
    );
    if (marked.rowCount !== 1) throw new TierwatchError('INTERNAL', `run ${run.run_id} was no longer ok`);
  }
  // Deleted first, then reopened, so no identity ever has two open versions (as on SQLite).
  for (const account of accounts) {
    result.versionsDeleted +=
      (await client.query('DELETE FROM tier_version WHERE account_id = $1 AND valid_from > $2', [account, afterMs]))
        .rowCount ?? 0;
    result.versionsReopened +=
      (
        await client.query('UPDATE tier_version SET valid_to = NULL WHERE account_id = $1 AND valid_to > $2', [
          account,
          afterMs,
        ])
      ).rowCount ?? 0;
  }
  return result;
}

/**
 * Rewinds the history at `pool` (see the module comment). `where` is the database's printable name.
 * Throws USAGE as on SQLite, DB_LEADER_ELSEWHERE while another holds the lease.
 */
export async function rewindOnPostgres(
  pool: pg.Pool,
  where: string,
  input: RewindInput,
  settings: Partial<LeaseSettings>,
): Promise<RewindResult> {
  if (input.dryRun === true) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      return await discard(client, input);
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      client.release();
    }
  }
  const lease = new LeaderLease(pool, { settings });
  if ((await lease.tryAcquire()) === null) {
    const current = await lease.current().catch(() => null);
    throw new TierwatchError(
      'DB_LEADER_ELSEWHERE',
      (current === null
        ? `another collector holds the leadership lease of ${where}`
        : `${current.holder} leads ${where} (epoch ${current.epoch}, its lease runs until ${current.expires_at} unless renewed)`) +
        '; nothing was rewound: stop the daemons, rewind, then start them again',
      { details: current === null ? {} : { holder: current.holder, epoch: current.epoch } },
    );
  }
  try {
    return await lease.writeTransaction((client) => discard(client, input));
  } finally {
    // At once: a standby need not wait for the lease to run out.
    await lease.release().catch(() => {});
  }
}

const UNDEFINED_TABLE = '42P01';

/**
 * The command's side: connects to `url`, resolves `--after` (a `run:N` from the shared ledger),
 * rewinds, and names the database without its password in every failure.
 */
export async function rewindPostgresAt(
  url: PostgresUrl,
  settings: Partial<LeaseSettings>,
  spec: TimeSpec,
  inputAt: (after: string) => RewindInput,
): Promise<{ after: string; result: RewindResult }> {
  const pool = createPgPool(url.reveal(), { applicationName: 'tierwatch rewind', max: 2 });
  try {
    let run: RunInstant | undefined;
    if (spec.kind === 'run') {
      const { text, values } = numberParameters(RUN_INSTANT_SQL, {}, [spec.runId]);
      run = (await pool.query<RunInstant>(text, values)).rows[0];
    }
    const after = resolveTime(spec, () => run, '--after');
    return { after, result: await rewindOnPostgres(pool, url.display, inputAt(after), settings) };
  } catch (error) {
    if (error instanceof TierwatchError) throw error;
    const message = (error as Error).message;
    if ((error as { code?: unknown }).code === UNDEFINED_TABLE) {
      throw new TierwatchError(
        'DB_NEEDS_MIGRATION',
        `The database ${url.display} holds no tierwatch history (${message}): run \`tierwatch migrate\` against it first.`,
        { cause: error },
      );
    }
    throw new TierwatchError('DB_WRITE_FAILED', `Cannot rewind ${url.display}: ${message}`, { cause: error });
  } finally {
    await pool.end().catch(() => {});
  }
}
