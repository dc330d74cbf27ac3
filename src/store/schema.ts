/**
 * The tierwatch database schema, defined with drizzle; `drizzle-kit generate` turns it into the SQL
 * migrations under `migrations/` (never edit a committed migration: change this file and generate a
 * new one).
 *
 * Two layers:
 * - internal tables (`meta`, `run_ledger`, `tier_version`, `tier_change`), free to evolve;
 * - the public views (`runs`, `tier_versions`, `tiers_current`, `tier_changes`), the stable contract
 *   for users of sqlite3/Datasette and for the query commands. Their column lists are documented in
 *   the README and asserted by test/store-schema.test.ts.
 *
 * Conventions: property names are the SQL column names (snake_case), so nothing is renamed between
 * the SQL, the TypeScript rows and the JSON output. Timestamps are ISO-8601 UTC text with
 * milliseconds (`Date#toISOString()`), so text order is time order. Tracked numbers are REAL,
 * leverage is the normalised decimal TEXT, the primary account is the literal 'primary'.
 *
 * This file imports nothing from the rest of tierwatch so drizzle-kit can load it on its own.
 */
import { sql } from 'drizzle-orm';
import { check, index, integer, real, sqliteTable, sqliteView, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

export const RUN_STATUSES = ['running', 'ok', 'failed', 'aborted', 'abandoned'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const CHANGE_KINDS = ['added', 'removed', 'changed'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** Small key/value facts about the database itself, e.g. the endpoint it belongs to. */
export const meta = sqliteTable('meta', {
  key: text().primaryKey(),
  value: text().notNull(),
});

/** One row per run (one account's sweep), written before the sweep starts and finished after it. */
export const runLedger = sqliteTable(
  'run_ledger',
  {
    run_id: integer().primaryKey({ autoIncrement: true }),
    account_id: text().notNull(),
    endpoint: text().notNull(),
    /** The QFEX public key the run authenticated with (provenance). Never a secret. */
    public_key: text(),
    started_at: text().notNull(),
    /** When the run's last page arrived: valid_from/valid_to of what it opened/closed. */
    observed_at: text(),
    finished_at: text(),
    status: text({ enum: RUN_STATUSES }).notNull(),
    pages: integer().notNull().default(0),
    tiers: integer(),
    changes: integer(),
    error_code: text(),
    error_message: text(),
  },
  (table) => [
    check(
      'run_ledger_status_check',
      sql`${table.status} IN ('running', 'ok', 'failed', 'aborted', 'abandoned')`,
    ),
    // "Last successful sweep" overall and per account (the query commands print it on every table).
    index('run_ledger_ok_observed_idx').on(table.observed_at).where(sql`status = 'ok'`),
    index('run_ledger_ok_account_observed_idx').on(table.account_id, table.observed_at).where(sql`status = 'ok'`),
    // Finding runs a crash left 'running' at start-up without scanning a year of ledger.
    index('run_ledger_running_idx').on(table.run_id).where(sql`status = 'running'`),
  ],
);

/**
 * Type-2 history: one row per distinct state of a tier, valid over [valid_from, valid_to).
 * valid_to is NULL while the version is current; at most one open version per identity.
 */
export const tierVersion = sqliteTable(
  'tier_version',
  {
    version_id: integer().primaryKey({ autoIncrement: true }),
    account_id: text().notNull(),
    symbol: text().notNull(),
    leverage: text().notNull(),
    initial_margin: real().notNull(),
    maintenance_margin: real().notNull(),
    max_notional: real().notNull(),
    /** The exchange's row id when this version was opened; not part of identity or change. */
    exchange_id: text(),
    valid_from: text().notNull(),
    valid_to: text(),
    /** The run that opened this version. */
    run_id: integer()
      .notNull()
      .references(() => runLedger.run_id),
  },
  (table) => [
    // Identity of the open version; also the index that loads an account's current state.
    uniqueIndex('tier_version_open_uq')
      .on(table.account_id, table.symbol, table.leverage)
      .where(sql`valid_to IS NULL`),
    // One symbol's snapshot at T and the history of a symbol (all accounts), in time order.
    index('tier_version_symbol_from_idx').on(table.symbol, table.valid_from),
    // Whole-exchange snapshot at T (valid_from <= T AND (valid_to IS NULL OR valid_to > T)): early
    // in the history the planner walks valid_from, late in it valid_to. Each index carries the other
    // bound, so rows are rejected from the index without touching the table (a year of history
    // mid-way: ~62 ms with single-column indexes, ~19 ms with these).
    index('tier_version_from_to_idx').on(table.valid_from, table.valid_to),
    index('tier_version_to_from_idx').on(table.valid_to, table.valid_from),
    check('tier_version_interval_check', sql`${table.valid_to} IS NULL OR ${table.valid_to} > ${table.valid_from}`),
  ],
);

/** One row per change a run recorded. observed_at is copied from the run so the feed is indexable. */
export const tierChange = sqliteTable(
  'tier_change',
  {
    change_id: integer().primaryKey({ autoIncrement: true }),
    run_id: integer()
      .notNull()
      .references(() => runLedger.run_id),
    observed_at: text().notNull(),
    account_id: text().notNull(),
    symbol: text().notNull(),
    leverage: text().notNull(),
    change: text({ enum: CHANGE_KINDS }).notNull(),
    /** JSON array text of tracked column names; '[]' for added and removed. */
    changed_columns: text().notNull(),
    old_initial_margin: real(),
    new_initial_margin: real(),
    old_maintenance_margin: real(),
    new_maintenance_margin: real(),
    old_max_notional: real(),
    new_max_notional: real(),
  },
  (table) => [
    check('tier_change_change_check', sql`${table.change} IN ('added', 'removed', 'changed')`),
    // The change feed by time (--since/--until).
    index('tier_change_observed_idx').on(table.observed_at),
    // The feed for one account and symbol, and for one symbol across accounts.
    index('tier_change_account_symbol_observed_idx').on(table.account_id, table.symbol, table.observed_at),
    index('tier_change_symbol_observed_idx').on(table.symbol, table.observed_at),
    index('tier_change_run_idx').on(table.run_id),
  ],
);

// ---------------------------------------------------------------------------------------------
// The public views. Their column lists are a contract: add columns only at the end, never rename.
// ---------------------------------------------------------------------------------------------

export const runsView = sqliteView('runs').as((qb) =>
  qb
    .select({
      run_id: runLedger.run_id,
      account_id: runLedger.account_id,
      endpoint: runLedger.endpoint,
      started_at: runLedger.started_at,
      observed_at: runLedger.observed_at,
      finished_at: runLedger.finished_at,
      status: runLedger.status,
      pages: runLedger.pages,
      tiers: runLedger.tiers,
      changes: runLedger.changes,
      error_code: runLedger.error_code,
      error_message: runLedger.error_message,
      public_key: runLedger.public_key,
    })
    .from(runLedger),
);

const versionColumns = {
  account_id: tierVersion.account_id,
  symbol: tierVersion.symbol,
  leverage: tierVersion.leverage,
  initial_margin: tierVersion.initial_margin,
  maintenance_margin: tierVersion.maintenance_margin,
  max_notional: tierVersion.max_notional,
  exchange_id: tierVersion.exchange_id,
  valid_from: tierVersion.valid_from,
  valid_to: tierVersion.valid_to,
  run_id: tierVersion.run_id,
};

export const tierVersionsView = sqliteView('tier_versions').as((qb) => qb.select(versionColumns).from(tierVersion));

export const tiersCurrentView = sqliteView('tiers_current').as((qb) =>
  qb.select(versionColumns).from(tierVersion).where(sql`${tierVersion.valid_to} IS NULL`),
);

export const tierChangesView = sqliteView('tier_changes').as((qb) =>
  qb
    .select({
      run_id: tierChange.run_id,
      observed_at: tierChange.observed_at,
      account_id: tierChange.account_id,
      symbol: tierChange.symbol,
      leverage: tierChange.leverage,
      change: tierChange.change,
      changed_columns: tierChange.changed_columns,
      old_initial_margin: tierChange.old_initial_margin,
      new_initial_margin: tierChange.new_initial_margin,
      old_maintenance_margin: tierChange.old_maintenance_margin,
      new_maintenance_margin: tierChange.new_maintenance_margin,
      old_max_notional: tierChange.old_max_notional,
      new_max_notional: tierChange.new_max_notional,
    })
    .from(tierChange),
);

/** The public views' column lists, in order: the documented contract. */
export const VIEW_COLUMNS = {
  runs: [
    'run_id', 'account_id', 'endpoint', 'started_at', 'observed_at', 'finished_at', 'status', 'pages', 'tiers',
    'changes', 'error_code', 'error_message', 'public_key',
  ],
  tier_versions: [
    'account_id', 'symbol', 'leverage', 'initial_margin', 'maintenance_margin', 'max_notional', 'exchange_id',
    'valid_from', 'valid_to', 'run_id',
  ],
  tiers_current: [
    'account_id', 'symbol', 'leverage', 'initial_margin', 'maintenance_margin', 'max_notional', 'exchange_id',
    'valid_from', 'valid_to', 'run_id',
  ],
  tier_changes: [
    'run_id', 'observed_at', 'account_id', 'symbol', 'leverage', 'change', 'changed_columns', 'old_initial_margin',
    'new_initial_margin', 'old_maintenance_margin', 'new_maintenance_margin', 'old_max_notional', 'new_max_notional',
  ],
} as const;

// ---------------------------------------------------------------------------------------------
// Alerts (issue 7): the webhook outbox and the staleness state. Internal tables, not a contract.
// ---------------------------------------------------------------------------------------------

export const ALERT_KINDS = ['changes', 'stale', 'recovered'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/**
 * `dead`: delivery gave up for good (a permanent HTTP answer, too many attempts, or too old); the
 * notification no longer holds back the ones after it and waits for `tierwatch alerts retry|drop`.
 */
export const OUTBOX_STATUSES = ['pending', 'delivered', 'dead'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/**
 * One row per notification per webhook URL. Change notifications are inserted in the same
 * transaction as the changes they report; the body is stored exactly as it will be sent, so every
 * retry sends the same bytes under the same notification_id (the Idempotency-Key).
 */
export const alertOutbox = sqliteTable(
  'alert_outbox',
  {
    outbox_id: integer().primaryKey({ autoIncrement: true }),
    notification_id: text().notNull(),
    kind: text({ enum: ALERT_KINDS }).notNull(),
    url: text().notNull(),
    format: text().notNull(),
    /** The run a `changes` notification reports; NULL for stale/recovered. */
    run_id: integer().references(() => runLedger.run_id),
    created_at: text().notNull(),
    body: text().notNull(),
    status: text({ enum: OUTBOX_STATUSES }).notNull().default('pending'),
    attempts: integer().notNull().default(0),
    last_attempt_at: text(),
    last_error: text(),
    delivered_at: text(),
    /** When delivery gave up (status `dead`), and why, in words safe to show (no URL path, no secret). */
    dead_at: text(),
    dead_reason: text(),
  },
  (table) => [
    check('alert_outbox_status_check', sql`${table.status} IN ('pending', 'delivered', 'dead')`),
    check('alert_outbox_kind_check', sql`${table.kind} IN ('changes', 'stale', 'recovered')`),
    uniqueIndex('alert_outbox_notification_url_uq').on(table.notification_id, table.url),
    // The delivery queue of one URL, oldest first.
    index('alert_outbox_pending_idx').on(table.url, table.outbox_id).where(sql`status = 'pending'`),
  ],
);

/** Small persisted facts of the alerting, e.g. whether a `stale` notification is outstanding. */
export const alertState = sqliteTable('alert_state', {
  key: text().primaryKey(),
  value: text().notNull(),
  updated_at: text().notNull(),
});
