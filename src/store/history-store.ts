/**
 * The writer of the tier history: the run ledger and the type-2 versions.
 *
 * One sweep is one transaction (BEGIN IMMEDIATE … COMMIT), in steps: diff against the account's
 * current versions, check the guards (MASS_REMOVAL; pure, see `checkSweepGuards`), close and open
 * versions, mark the run ok. Either all of it is stored or none of it. The versions are the only
 * record: the change feed (`tier_changes`) is derived from them, so the ChangeRecords a sweep
 * returns are built here exactly as that view derives them (a test holds the two equal).
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
import { checkClock, checkErosion, EROSION_WINDOW_MS } from '../history/guards.ts';
import type { Tier, TrackedColumn } from '../history/tier.ts';
import type { CheckpointResult, StoreDb } from './db.ts';
import type { ChangeKind } from './schema.ts';
import { toStoreError } from './sqlite-errors.ts';
import { normalizeEndpoint } from '../qfex/endpoint.ts';

/**
 * A row of the `tier_changes` view's first thirteen columns, with changed_columns parsed into an
 * array (classification is derived from it by src/alerts/classify.ts; baseline is the sweep's).
 */
export interface ChangeRecord {
  run_id: number;
  observed_at: string;
  account_id: string;
  symbol: string;
  leverage: string;
  change: ChangeKind;
  changed_columns: TrackedColumn[];
  old_initial_margin: number | null;
  new_initial_margin: number | null;
  old_maintenance_margin: number | null;
  new_maintenance_margin: number | null;
  old_max_notional: number | null;
  new_max_notional: number | null;
}

export interface SweepOutcome {
  added: number;
  removed: number;
  changed: number;
  /** Every change stored, in the order stored: removed, then changed, then added. */
  changes: ChangeRecord[];
  /** The account's first successful sweep: its changes are the baseline, not news. */
  baseline: boolean;
}

export interface SweepInput {
  accountId: string;
  /** When the last page arrived: valid_from/valid_to of every version this sweep opens/closes. */
  observedAt: Date;
  finishedAt: Date;
  /** The complete, validated tier list of the account. */
  tiers: Tier[];
  pages: number;
  /** Refuse (MASS_REMOVAL) a sweep that would remove more than this share of the current tiers. */
  maxRemovalRatio: number;
}

export interface RunFailure {
  status: 'failed' | 'aborted';
  code: string;
  message: string;
  pages: number;
  finishedAt: Date;
  observedAt?: Date | null;
}

export interface StartRunInput {
  accountId: string;
  endpoint: string;
  /** The public key the run authenticates with (provenance); never a secret. */
  publicKey: string | null;
  startedAt: Date;
}

/** What one sweep stored, as a sweep hook sees it (inside the transaction, before COMMIT). */
export interface StoredSweep {
  runId: number;
  accountId: string;
  observedAt: string;
  changes: readonly ChangeRecord[];
  /** The account's first successful sweep (its changes are the baseline: never alerted). */
  baseline: boolean;
}

/**
 * Called inside every sweep transaction, after the sweep's writes and before COMMIT, on the same
 * connection: what it writes commits with the sweep, and whatever it throws rolls the sweep back.
 * The alert outbox is written from here, so a notification exists exactly when its changes do.
 */
export type SweepHook = (stored: StoredSweep) => void;

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
const MAX_ERROR_MESSAGE_LENGTH = 4000;

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

  readonly #stmt: {
    dataVersion: Database.Statement<[], number>;
    loadCurrent: Database.Statement<[string], CurrentVersion>;
    lastObserved: Database.Statement<[string], { observed_at: string | null }>;
    recentTierCounts: Database.Statement<[string, string], number>;
    runHeader: Database.Statement<[number], { account_id: string; status: string }>;
    closeVersion: Database.Statement<[number, number]>;
    openVersion: Database.Statement<
      [string, string, string, number, number, number, string | null, number, number, number | null]
    >;
    finishOk: Database.Statement<[string, string, number, number, number, number, number]>;
    finishFailed: Database.Statement<[string, string, string, number, string, string | null, number]>;
    startRun: Database.Statement<[string, string, string | null, string]>;
    abandon: Database.Statement<[string, string]>;
    getMeta: Database.Statement<[string], { value: string }>;
    putMeta: Database.Statement<[string, string]>;
    lastOk: Database.Statement<[], { run_id: number; observed_at: string }>;
    lastOkForAccount: Database.Statement<[string], { run_id: number; observed_at: string }>;
  };

  readonly #commitTransaction: (runId: number, sweep: SweepInput) => SweepResult;

  /** The db must be writable; the store never closes it (its opener does). */
  constructor(db: StoreDb, options: HistoryStoreOptions = {}) {
    if (db.readonly) throw new TierwatchError('INTERNAL', 'HistoryStore needs a writable database');
    this.#sqlite = db.sqlite;
    this.#db = db;
    this.#logger = options.logger ?? silentLogger();
    this.#beforeCommit = options.beforeCommit;
    const sqlite = this.#sqlite;
    this.#stmt = {
      dataVersion: sqlite.prepare<[], number>('PRAGMA data_version').pluck(),
      loadCurrent: sqlite.prepare(
        `SELECT version_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id
           FROM tier_version WHERE valid_to IS NULL AND account_id = ?`,
      ),
      lastObserved: sqlite.prepare(
        `SELECT max(observed_at) AS observed_at FROM run_ledger WHERE status = 'ok' AND account_id = ?`,
      ),
      recentTierCounts: sqlite
        .prepare<[string, string], number>(
          `SELECT coalesce(tiers, 0) FROM run_ledger WHERE status = 'ok' AND account_id = ? AND observed_at >= ?
            ORDER BY observed_at, run_id`,
        )
        .pluck(),
      runHeader: sqlite.prepare('SELECT account_id, status FROM run_ledger WHERE run_id = ?'),
      closeVersion: sqlite.prepare('UPDATE tier_version SET valid_to = ? WHERE version_id = ? AND valid_to IS NULL'),
      openVersion: sqlite.prepare(
        `INSERT INTO tier_version (account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional,
                                   exchange_id, valid_from, run_id, prev_version_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      finishOk: sqlite.prepare(
        `UPDATE run_ledger SET status = 'ok', observed_at = ?, finished_at = ?, pages = ?, tiers = ?, changes = ?, baseline = ?
          WHERE run_id = ? AND status = 'running'`,
      ),
      finishFailed: sqlite.prepare(
        `UPDATE run_ledger SET status = ?, error_code = ?, error_message = ?, pages = ?, finished_at = ?, observed_at = ?
          WHERE run_id = ? AND status = 'running'`,
      ),
      startRun: sqlite.prepare(
        `INSERT INTO run_ledger (account_id, endpoint, public_key, started_at, status) VALUES (?, ?, ?, ?, 'running')`,
      ),
      abandon: sqlite.prepare(
        `UPDATE run_ledger SET status = 'abandoned', finished_at = ?, error_message = ? WHERE status = 'running'`,
      ),
      getMeta: sqlite.prepare('SELECT value FROM meta WHERE key = ?'),
      putMeta: sqlite.prepare('INSERT INTO meta (key, value) VALUES (?, ?)'),
      lastOk: sqlite.prepare(
        `SELECT run_id, observed_at FROM run_ledger WHERE status = 'ok' ORDER BY observed_at DESC, run_id DESC LIMIT 1`,
      ),
      lastOkForAccount: sqlite.prepare(
        `SELECT run_id, observed_at FROM run_ledger WHERE status = 'ok' AND account_id = ?
          ORDER BY observed_at DESC, run_id DESC LIMIT 1`,
      ),
    };
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
      if (changes > 0) this.#logger.warn({ runs: changes }, 'marked runs left running by a previous process as abandoned');
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
      const info = this.#stmt.startRun.run(input.accountId, input.endpoint, input.publicKey, input.startedAt.toISOString());
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
    const message =
      failure.message.length > MAX_ERROR_MESSAGE_LENGTH
        ? `${failure.message.slice(0, MAX_ERROR_MESSAGE_LENGTH)}…`
        : failure.message;
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
      if (changes === 0) this.#logger.warn({ run_id: runId, status: failure.status }, 'failRun: the run was not running; left as is');
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
    const changes: ChangeRecord[] = [];
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
        accountId, tier.symbol, tier.leverage, tier.initial_margin, tier.maintenance_margin, tier.max_notional,
        tier.exchange_id, observedMs, runId, previous?.version_id ?? null,
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
    const base = { run_id: runId, observed_at: observedAt, account_id: accountId };

    for (const version of diff.removed) {
      close(version);
      changes.push({
        ...base, symbol: version.symbol, leverage: version.leverage, change: 'removed', changed_columns: [],
        old_initial_margin: version.initial_margin, new_initial_margin: null,
        old_maintenance_margin: version.maintenance_margin, new_maintenance_margin: null,
        old_max_notional: version.max_notional, new_max_notional: null,
      });
    }
    for (const { before, after, columns } of diff.changed) {
      close(before);
      open(after, before);
      changes.push({
        ...base, symbol: after.symbol, leverage: after.leverage, change: 'changed', changed_columns: columns,
        old_initial_margin: before.initial_margin, new_initial_margin: after.initial_margin,
        old_maintenance_margin: before.maintenance_margin, new_maintenance_margin: after.maintenance_margin,
        old_max_notional: before.max_notional, new_max_notional: after.max_notional,
      });
    }
    for (const tier of diff.added) {
      open(tier, null);
      changes.push({
        ...base, symbol: tier.symbol, leverage: tier.leverage, change: 'added', changed_columns: [],
        old_initial_margin: null, new_initial_margin: tier.initial_margin,
        old_maintenance_margin: null, new_maintenance_margin: tier.maintenance_margin,
        old_max_notional: null, new_max_notional: tier.max_notional,
      });
    }

    const finished = this.#stmt.finishOk.run(
      observedAt, sweep.finishedAt.toISOString(), sweep.pages, sweep.tiers.length, changes.length, baseline ? 1 : 0, runId,
    );
    if (finished.changes !== 1) throw new TierwatchError('INTERNAL', `run ${runId} could not be marked ok`);
    this.#sweepHook?.({ runId, accountId, observedAt, changes, baseline });
    this.#beforeCommit?.(runId);

    return {
      outcome: { added: diff.added.length, removed: diff.removed.length, changed: diff.changed.length, changes, baseline },
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
        { run_id: runId, account_id: accountId, added: diff.added.length, removed: diff.removed.length, changed: diff.changed.length, current: currentCount },
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


/**
 * The guards a sweep must pass before anything is written; pure, so more can be added beside it.
 * Throws MASS_REMOVAL when more than maxRemovalRatio of the account's current tiers would go.
 */
export function checkSweepGuards(input: { accountId: string; current: number; diff: TierDiff; maxRemovalRatio: number }): void {
  const { accountId, current, diff, maxRemovalRatio } = input;
  if (current > 0 && diff.removed.length / current > maxRemovalRatio) {
    throw new TierwatchError(
      'MASS_REMOVAL',
      `The sweep of account ${accountId} would remove ${diff.removed.length} of its ${current} current tiers ` +
        `(more than ${formatRatio(maxRemovalRatio)}); nothing was stored. If the exchange really delisted them, ` +
        'raise TIERWATCH_MAX_REMOVAL_RATIO for one run.',
      { details: { accountId, removed: diff.removed.length, current, maxRemovalRatio } },
    );
  }
}

function formatRatio(ratio: number): string {
  return `${Math.round(ratio * 1000) / 10}%`;
}
