/**
 * The collector's store on a Postgres history (the SweepStore of store/sweep-store.ts): the sweeps
 * themselves go through PgSweepWriter; this adds what the daemon needs around them, each write a
 * fenced transaction (LeaderLease.writeTransaction), so a collector that no longer leads writes
 * nothing and gets DB_LEADERSHIP_LOST:
 *
 * - the endpoint binding in `meta`, as on SQLite (ENDPOINT_MISMATCH with the same message);
 * - abandoned runs: the first run of each new leadership epoch is preceded by marking every run an
 *   EARLIER epoch left 'running' as 'abandoned'. Those runs' leader died, froze or was cut off: it
 *   can never finish them, since its writes are fenced out. A run of our own epoch is never touched
 *   (it may be in flight). Standbys never mark anything: they cannot write.
 */
import type { Logger } from '../../log.ts';
import { normalizeEndpoint } from '../../qfex/endpoint.ts';
import { TierwatchError } from '../../errors.ts';
import type { RunFailure, StartRunInput, SweepInput, SweepOutcome } from '../history-store-types.ts';
import type { SweepStore } from '../sweep-store.ts';
import type { LeaderLease } from './lease.ts';
import { PgSweepWriter, type PgSweepHook } from './sweep-writer.ts';

const ABANDONED_MESSAGE =
  'the collector that led when this run started stopped before finishing it (crash, kill, freeze or network loss); another took over';

function storeError(error: unknown, doing: string): unknown {
  if (error instanceof TierwatchError) return error;
  return new TierwatchError('DB_WRITE_FAILED', `Postgres refused ${doing}: ${(error as Error).message}`, {
    cause: error,
  });
}

export class PgSweepStore implements SweepStore {
  readonly #lease: LeaderLease;
  readonly #writer: PgSweepWriter;
  readonly #logger: Logger;
  #boundEndpoint: string | null = null;
  /** The epoch whose predecessors' running runs were marked abandoned. */
  #cleanedEpoch: number | null = null;

  /** Writes through `lease` (whose pool its creator ends). */
  constructor(lease: LeaderLease, logger: Logger) {
    this.#lease = lease;
    this.#writer = new PgSweepWriter(lease);
    this.#logger = logger;
  }

  /** See PgSweepHook: the alert outbox is written in the sweep's own fenced transaction. */
  setSweepHook(hook: PgSweepHook | null): void {
    this.#writer.setSweepHook(hook);
  }

  async bindEndpoint(endpoint: string): Promise<void> {
    const requested = normalizeEndpoint(endpoint);
    if (this.#boundEndpoint === requested) return;
    try {
      await this.#lease.writeTransaction(async (client) => {
        // ON CONFLICT DO NOTHING, then read: two first sweeps at once (a collect beside a daemon) agree.
        const inserted = await client.query(
          `INSERT INTO meta (key, value) VALUES ('endpoint', $1) ON CONFLICT (key) DO NOTHING`,
          [requested],
        );
        if (inserted.rowCount === 1) {
          this.#logger.info({ endpoint: requested }, 'database bound to endpoint');
          return;
        }
        const stored = (await client.query<{ value: string }>(`SELECT value FROM meta WHERE key = 'endpoint'`)).rows[0]
          ?.value;
        if (stored !== requested) {
          throw new TierwatchError(
            'ENDPOINT_MISMATCH',
            `This database holds the history of ${stored}, not of ${requested}: use another TIERWATCH_DB for ${requested}.`,
            { details: { stored, requested } },
          );
        }
      });
    } catch (error) {
      throw storeError(error, 'binding the database to its endpoint');
    }
    this.#boundEndpoint = requested;
  }

  async startRun(input: StartRunInput): Promise<number> {
    if (this.#lease.epoch !== this.#cleanedEpoch) await this.markAbandonedRuns(input.startedAt);
    return this.#writer.startRun(input);
  }

  commitSweep(runId: number, sweep: SweepInput): Promise<SweepOutcome> {
    return this.#writer.commitSweep(runId, sweep);
  }

  failRun(runId: number, failure: RunFailure): Promise<void> {
    return this.#writer.failRun(runId, failure);
  }

  /** Marks the running runs of earlier epochs abandoned, in a fenced transaction; returns how many. */
  async markAbandonedRuns(now: Date): Promise<number> {
    try {
      const { epoch, count } = await this.#lease.writeTransaction(async (client, epoch) => {
        const result = await client.query(
          `UPDATE run_ledger SET status = 'abandoned', finished_at = $1, error_message = $2
            WHERE status = 'running' AND (leader_epoch IS NULL OR leader_epoch < $3)`,
          [now.toISOString(), ABANDONED_MESSAGE, epoch],
        );
        return { epoch, count: result.rowCount ?? 0 };
      });
      this.#cleanedEpoch = epoch;
      if (count > 0) {
        this.#logger.warn({ runs: count, epoch }, `marked ${count} run(s) an earlier leader left running as abandoned`);
      }
      return count;
    } catch (error) {
      throw storeError(error, 'marking abandoned runs');
    }
  }

  /** Postgres has no WAL for us to checkpoint: its own checkpointer does that. */
  checkpoint(): null {
    return null;
  }
}
