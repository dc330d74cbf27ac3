/**
 * The writer of the tier history: the run ledger and the type-2 versions.
 *
 * One sweep is one transaction (BEGIN IMMEDIATE … COMMIT), in steps: diff against the account's
 * current versions, check the guards (history/guards.ts, pure), close and open versions, mark the
 * run ok. Either all of it is stored or none of it. The versions are the only record: the change
 * feed (`tier_changes`) is derived from them, and the ChangeRecords a sweep returns are built from
 * its diff exactly as that view derives them (change-records.ts).
 *
 * Beside this file: its SQL (history-statements.ts) and the shapes it takes and returns
 * (history-store-types.ts, re-exported here so that one import serves a caller).
 *
 * Baseline: an account's first successful sweep lists every tier as `added`; that is not news. The
 * run is marked `baseline` in the ledger, and the sweep's outcome says so (alerts and the changes
 * counter skip it).
 *
 * Speed: each account's current versions are kept in memory between sweeps (reading 100,000 rows
 * back costs more than the whole diff). The copy is trusted only while `PRAGMA data_version` — which
 * changes when another connection commits — is the value seen at the last check; the check runs
 * inside the write transaction, after the write lock is taken, so no other writer can slip in
 * between the check and the writes. Use one HistoryStore per StoreDb: writes through another
 * object on the same connection are invisible to data_version.
 *
 * exchange_id: a change of the exchange's row id alone is not a tier change, so no version is opened
 * for it; the open version keeps the id it was opened with until a tracked value changes.
 */
import type Database from 'better-sqlite3';
import { TierwatchError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { CurrentTiers, type CurrentVersion } from '../history/current-tiers.ts';
import { diffTiers, type TierDiff } from '../history/diff.ts';
import { checkClock, checkErosion, checkSweepGuards, EROSION_WINDOW_MS } from '../history/guards.ts';
import type { Tier } from '../history/tier.ts';
import { changeRecords } from './change-records.ts';
import type { CheckpointResult, StoreDb } from './db.ts';
import { prepareHistoryStatements, type HistoryStatements } from './history-statements.ts';
import {
  storedErrorMessage,
  type RunFailure,
  type StartRunInput,
  type SweepHook,
  type SweepInput,
  type SweepOutcome,
} from './history-store-types.ts';
import { toStoreError } from './sqlite-errors.ts';
import { normalizeEndpoint } from '../qfex/endpoint.ts';

export type { ChangeRecord } from './change-records.ts';
export type {
  RunFailure,
  StartRunInput,
  StoredSweep,
  SweepHook,
  SweepInput,
  SweepOutcome,
} from './history-store-types.ts';

export interface HistoryStoreOptions {
  logger?: Logger;
  /**
   * Test hook (crash and rollback tests): called inside the sweep transaction after every write,
   * just before COMMIT. Whatever it throws rolls the sweep back.
   */
  beforeCommit?: (runId: number) => void;
}

/** What the store keeps per account between sweeps. */
interface AccountState {
  versions: CurrentTiers;
  /** observed_at of the account's last successful sweep: the next one must be later. */
  lastObservedAt: string | null;
}

/** The writes one sweep made, applied to the in-memory state only after COMMIT succeeded. */
interface SweepResult {
  outcome: SweepOutcome;
  state: AccountState;
  closed: CurrentVersion[];
  opened: CurrentVersion[];
  observedAt: string;
}

const ABANDONED_MESSAGE = 'the process stopped before this run finished (crash, kill or power loss)';

export class HistoryStore {
  readonly #sqlite: Database.Database;
  readonly #db: StoreDb;
  readonly #logger: Logger;
  readonly #beforeCommit: ((runId: number) => void) | undefined;
  #sweepHook: SweepHook | null = null;
  /** The endpoint this database was found (or made) bound to, once checked. */
  #boundEndpoint: string | null = null;
  readonly #accounts = new Map<string, AccountState>();
  /** data_version at the last check; null until the first. */
  #knownDataVersion: number | null = null;

  readonly #stmt: HistoryStatements;

  readonly #commitTransaction: (runId: number, sweep: SweepInput) => SweepResult;

  /** The db must be writable; the store never closes it (its opener does). */
  constructor(db: StoreDb, options: HistoryStoreOptions = {}) {
    if (db.readonly) throw new TierwatchError('INTERNAL', 'HistoryStore needs a writable database');
    this.#sqlite = db.sqlite;
    this.#db = db;
    this.#logger = options.logger ?? silentLogger();
    this.#beforeCommit = options.beforeCommit;
    const sqlite = this.#sqlite;
    this.#stmt = prepareHistoryStatements(sqlite);
    const transaction = sqlite.transaction((runId: number, sweep: SweepInput) => this.#writeSweep(runId, sweep));
    this.#commitTransaction = (runId, sweep) => transaction.immediate(runId, sweep);
  }

  /**
   * Marks every run still 'running' as 'abandoned' (its process died mid-sweep). Call once at start,
   * while holding the single-writer lock, before starting new runs. Returns how many were marked.
   */
  markAbandonedRuns(now: Date): number {
    try {
      const changes = this.#stmt.abandon.run(now.toISOString(), ABANDONED_MESSAGE).changes;
      if (changes > 0) {
        this.#logger.warn({ runs: changes }, 'marked runs left running by a previous process as abandoned');
      }
      return changes;
    } catch (error) {
      throw toStoreError(error, 'marking abandoned runs');
    }
  }

  /**
   * Binds the database to an endpoint on first use; afterwards a different endpoint throws
   * ENDPOINT_MISMATCH naming both (so UAT data never mixes with production history). Endpoints are
   * compared as URLs without query or fragment ("wss://x" = "wss://x/"). Idempotent.
   */
  bindEndpoint(endpoint: string): void {
    const requested = normalizeEndpoint(endpoint);
    // A binding never changes once made, so one check per store is enough: the daemon calls this
    // before every sweep, and it need not take the write lock each time.
    if (this.#boundEndpoint === requested) return;
    try {
      this.#sqlite
        .transaction(() => {
          const stored = this.#stmt.getMeta.get('endpoint')?.value;
          if (stored === undefined) {
            this.#stmt.putMeta.run('endpoint', requested);
            this.#logger.info({ endpoint: requested }, 'database bound to endpoint');
          } else if (stored !== requested) {
            throw new TierwatchError(
              'ENDPOINT_MISMATCH',
              `This database holds the history of ${stored}, not of ${requested}: use another TIERWATCH_DB for ${requested}.`,
              { details: { stored, requested } },
            );
          }
        })
        .immediate();
    } catch (error) {
      throw toStoreError(error, 'binding the database to its endpoint');
    }
    this.#boundEndpoint = requested;
  }

  /** Inserts a 'running' ledger row, committed at once, and returns its run_id. */
  startRun(input: StartRunInput): number {
    try {
      const info = this.#stmt.startRun.run(
        input.accountId,
        input.endpoint,
        input.publicKey,
        input.startedAt.toISOString(),
      );
      return Number(info.lastInsertRowid);
    } catch (error) {
      throw toStoreError(error, `starting a run for account ${input.accountId}`);
    }
  }

  /**
   * Stores a complete sweep of one account in one transaction and marks the run ok.
   * Throws (and stores nothing; the run stays 'running' for failRun): MASS_REMOVAL when more than
   * sweep.maxRemovalRatio of the current tiers would be removed; DB_WRITE_FAILED / DB_LOCKED from
   * SQLite; CLOCK_BEHIND when observedAt is not after the account's previous successful sweep;
   * MASS_REMOVAL too when the sweep has lost more than that ratio of the account's largest sweep of
   * the last 24 h; INTERNAL when the run is not this account's running run or the sweep lists a
   * tier twice.
   */
  commitSweep(runId: number, sweep: SweepInput): SweepOutcome {
    let result: SweepResult;
    try {
      result = this.#commitTransaction(runId, sweep);
    } catch (error) {
      throw toStoreError(error, `storing run ${runId}`);
    }
    // Committed: bring the in-memory state up to date (never before, so a rollback leaves it right).
    const { state, closed, opened, observedAt } = result;
    for (const version of closed) state.versions.delete(version.symbol, version.leverage);
    for (const version of opened) state.versions.set(version);
    state.lastObservedAt = observedAt;
    return result.outcome;
  }

  /**
   * Copies the WAL into the database file without waiting for readers (StoreDb.checkpoint): the
   * writer calls it after each committed sweep, outside the sweep, so SQLite's own checkpoint does
   * not run inside a COMMIT. Never throws: a checkpoint that fails loses nothing and is retried by
   * the next one; it is logged and null is returned.
   */
  checkpoint(): CheckpointResult | null {
    try {
      return this.#db.checkpoint();
    } catch (error) {
      this.#logger.warn({ err: error }, 'WAL checkpoint after the sweep failed; the next one retries it');
      return null;
    }
  }

  /** Sets (or, with null, removes) the hook every later sweep transaction calls; see SweepHook. */
  setSweepHook(hook: SweepHook | null): void {
    this.#sweepHook = hook;
  }

  /**
   * Records a run's failure: status, error code and message, pages fetched. Changes no history.
   * A run that is no longer 'running' is left alone (with a warning), so calling this from an
   * error path can never hide the original error behind a second one — except a database error.
   */
  failRun(runId: number, failure: RunFailure): void {
    const message = storedErrorMessage(failure.message);
    try {
      const changes = this.#stmt.finishFailed.run(
        failure.status,
        failure.code,
        message,
        failure.pages,
        failure.finishedAt.toISOString(),
        failure.observedAt ? failure.observedAt.toISOString() : null,
        runId,
      ).changes;
      if (changes === 0) {
        this.#logger.warn({ run_id: runId, status: failure.status }, 'failRun: the run was not running; left as is');
      }
    } catch (error) {
      throw toStoreError(error, `recording the failure of run ${runId}`);
    }
  }

  /** The latest successful run (of one account, or of any), or null when there is none. */
  lastSuccessfulRun(accountId?: string): { run_id: number; observed_at: string } | null {
    const row = accountId === undefined ? this.#stmt.lastOk.get() : this.#stmt.lastOkForAccount.get(accountId);
    return row ?? null;
  }

  /** Runs inside BEGIN IMMEDIATE: everything it writes commits together or not at all. */
  #writeSweep(runId: number, sweep: SweepInput): SweepResult {
    const { accountId } = sweep;
    const observedAt = sweep.observedAt.toISOString();
    const run = this.#stmt.runHeader.get(runId);
    if (run === undefined) throw new TierwatchError('INTERNAL', `run ${runId} does not exist`);
    if (run.account_id !== accountId) {
      throw new TierwatchError('INTERNAL', `run ${runId} belongs to account ${run.account_id}, not ${accountId}`);
    }
    if (run.status !== 'running') throw new TierwatchError('INTERNAL', `run ${runId} is ${run.status}, not running`);

    const state = this.#accountState(accountId);
    checkClock({ runId, accountId, observedAt, lastObservedAt: state.lastObservedAt });

    // Step 1: what changed (pure).
    const diff = diffTiers(state.versions, sweep.tiers);
    // Step 2: the guards (pure): refuse a sweep that cannot be right before writing anything.
    checkSweepGuards({ accountId, current: state.versions.size, diff, maxRemovalRatio: sweep.maxRemovalRatio });
    // Slow erosion: compared with the largest recent sweep, not only with the current tiers.
    const windowStart = new Date(sweep.observedAt.getTime() - EROSION_WINDOW_MS).toISOString();
    checkErosion({
      accountId,
      tiers: sweep.tiers.length,
      recentCounts: this.#stmt.recentTierCounts.all(accountId, windowStart),
      maxRemovalRatio: sweep.maxRemovalRatio,
    });
    this.#warnOnChurn(runId, accountId, state.versions.size, diff);

    // Step 3: the writes. Closing and opening versions is the whole record of the changes.
    const { closeVersion, openVersion } = this.#stmt;
    const observedMs = sweep.observedAt.getTime();
    const baseline = state.lastObservedAt === null;
    const closed: CurrentVersion[] = [];
    const opened: CurrentVersion[] = [];

    const close = (version: CurrentVersion): void => {
      if (closeVersion.run(observedMs, version.version_id).changes !== 1) {
        // The in-memory state was wrong: fail rather than leave two open versions behind.
        throw new TierwatchError('INTERNAL', `tier version ${version.version_id} was not open`);
      }
      closed.push(version);
    };
    const open = (tier: Tier, previous: CurrentVersion | null): void => {
      const info = openVersion.run(
        accountId,
        tier.symbol,
        tier.leverage,
        tier.initial_margin,
        tier.maintenance_margin,
        tier.max_notional,
        tier.exchange_id,
        observedMs,
        runId,
        previous?.version_id ?? null,
      );
      opened.push({
        version_id: Number(info.lastInsertRowid),
        symbol: tier.symbol,
        leverage: tier.leverage,
        initial_margin: tier.initial_margin,
        maintenance_margin: tier.maintenance_margin,
        max_notional: tier.max_notional,
        exchange_id: tier.exchange_id,
      });
    };
    for (const version of diff.removed) close(version);
    for (const { before, after } of diff.changed) {
      close(before);
      open(after, before);
    }
    for (const tier of diff.added) open(tier, null);
    const changes = changeRecords({ run_id: runId, observed_at: observedAt, account_id: accountId }, diff);

    const finished = this.#stmt.finishOk.run(
      observedAt,
      sweep.finishedAt.toISOString(),
      sweep.pages,
      sweep.tiers.length,
      changes.length,
      baseline ? 1 : 0,
      runId,
    );
    if (finished.changes !== 1) throw new TierwatchError('INTERNAL', `run ${runId} could not be marked ok`);
    this.#sweepHook?.({ runId, accountId, observedAt, changes, baseline });
    this.#beforeCommit?.(runId);

    return {
      outcome: {
        added: diff.added.length,
        removed: diff.removed.length,
        changed: diff.changed.length,
        changes,
        baseline,
      },
      state,
      closed,
      opened,
      observedAt,
    };
  }

  #warnOnChurn(runId: number, accountId: string, currentCount: number, diff: TierDiff): void {
    const churn = diff.removed.length + diff.changed.length + diff.added.length;
    if (currentCount > 0 && churn > currentCount / 2) {
      // Most tiers changing at once is more often a format change or a broken answer than real news.
      this.#logger.warn(
        {
          run_id: runId,
          account_id: accountId,
          added: diff.added.length,
          removed: diff.removed.length,
          changed: diff.changed.length,
          current: currentCount,
        },
        'mass churn: more than half of the tiers changed in one sweep',
      );
    }
  }

  /**
   * The account's current versions: the in-memory copy while no other connection has committed
   * since the last check, else reloaded from the database. Call inside the write transaction.
   */
  #accountState(accountId: string): AccountState {
    const dataVersion = this.#stmt.dataVersion.get() as number;
    if (dataVersion !== this.#knownDataVersion) {
      if (this.#knownDataVersion !== null && this.#accounts.size > 0) {
        this.#logger.debug({ accounts: this.#accounts.size }, 'another connection wrote: reloading current tiers');
      }
      this.#accounts.clear();
      this.#knownDataVersion = dataVersion;
    }
    let state = this.#accounts.get(accountId);
    if (state === undefined) {
      const versions = CurrentTiers.from(this.#stmt.loadCurrent.iterate(accountId));
      state = { versions, lastObservedAt: this.#stmt.lastObserved.get(accountId)?.observed_at ?? null };
      this.#accounts.set(accountId, state);
    }
    return state;
  }
}
