/**
 * The tierwatch database schema, defined with drizzle; `drizzle-kit generate` turns it into the SQL
 * migrations under `migrations/` (never edit a committed migration: change this file and generate a
 * new one).
 *
 * Two layers:
 * - internal tables (`meta`, `run_ledger`, `tier_version`) and the internal view `tier_change_feed`,
 *   free to evolve;
 * - the public views (`runs`, `tier_versions`, `tiers_current`, `tier_changes`), the stable contract
 *   for users of sqlite3/Datasette and for the query commands. Their column lists are documented in
 *   docs/sql.md and asserted by test/sql-doc-views.test.ts.
 *
 * Conventions: property names are the SQL column names (snake_case), so nothing is renamed between
 * the SQL, the TypeScript rows and the JSON output. Timestamps are ISO-8601 UTC text with
 * milliseconds (`Date#toISOString()`), so text order is time order — except inside tier_version,
 * which keeps epoch milliseconds (see there). Tracked numbers are REAL, leverage is the normalised
 * decimal TEXT (and `leverage_value` its number, for sorting), the primary account is 'primary'.
 *
 * This file imports nothing from the rest of tierwatch so drizzle-kit can load it on its own.
 */
import { sql } from 'drizzle-orm';
import { check, index, integer, real, sqliteTable, sqliteView, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { CHANGE_KINDS, type ChangeKind } from './change-kinds.ts';

export const RUN_STATUSES = ['running', 'ok', 'failed', 'aborted', 'abandoned'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export { CHANGE_KINDS, type ChangeKind };

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
    /**
     * 1 on the account's first successful run: its baseline, whose tiers are all `added` but are
     * not news (`changes` leaves them out by default, alerts never send them).
     */
    baseline: integer().notNull().default(0),
    /**
     * The collector's leadership epoch when a shared Postgres history stored the run (which leader
     * wrote it, and that epochs only grow); always NULL on SQLite, which has one writer and no lease.
     */
    leader_epoch: integer(),
  },
  (table) => [
    check('run_ledger_status_check', sql`${table.status} IN ('running', 'ok', 'failed', 'aborted', 'abandoned')`),
    // "Last successful sweep" overall and per account (the query commands print it on every table).
    index('run_ledger_ok_observed_idx')
      .on(table.observed_at)
      .where(sql`status = 'ok'`),
    index('run_ledger_ok_account_observed_idx')
      .on(table.account_id, table.observed_at)
      .where(sql`status = 'ok'`),
    // Finding runs a crash left 'running' at start-up without scanning a year of ledger.
    index('run_ledger_running_idx')
      .on(table.run_id)
      .where(sql`status = 'running'`),
  ],
);

/**
 * Type-2 history, the only record of the tiers: one row per distinct state of a tier, valid over
 * [valid_from, valid_to). Everything else (the change feed, the current state) is derived from it,
 * so two records of one fact can never disagree.
 *
 * Times here are Unix epoch MILLISECONDS (integers: 6 bytes on disk and in every index, against 24
 * for the ISO text); the public views show them as ISO-8601 text, exactly as 0.1.0 stored them.
 * valid_to is NULL while the version is current; at most one open version per identity (the
 * writer's invariant, checked by its close step and by the property test).
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
    /** Epoch ms: the observed_at of the run that opened this version. */
    valid_from: integer().notNull(),
    /** Epoch ms: the observed_at of the run that closed it; NULL while current. */
    valid_to: integer(),
    /** The run that opened this version. */
    run_id: integer()
      .notNull()
      .references(() => runLedger.run_id),
    /**
     * The version this one replaced when the tier's values changed (closed at this valid_from);
     * NULL when the tier was listed (first seen, or seen again after a removal).
     */
    prev_version_id: integer(),
  },
  (table) => [
    // One symbol's snapshot at T, a symbol's history, the change feed and diff of named symbols.
    // Symbol alone: a symbol has a few hundred versions a year, checked against T from the table,
    // and leaving valid_from out saves 6 bytes per version (the first sweep's budget is tight).
    index('tier_version_symbol_idx').on(table.symbol),
    // Whole-exchange snapshot at T (valid_from <= T AND (valid_to IS NULL OR valid_to > T)): early
    // in the history the planner walks valid_from, late in it valid_to; each index carries the other
    // bound so rows are rejected without touching the table. The same two indexes serve the change
    // feed's openings (valid_from) and closings (valid_to) in a window, and the writer's load of the
    // current versions (valid_to IS NULL).
    index('tier_version_from_to_idx').on(table.valid_from, table.valid_to),
    index('tier_version_to_from_idx').on(table.valid_to, table.valid_from),
    // "Was this closed version replaced?" (no: it was removed); a version has at most one successor.
    uniqueIndex('tier_version_prev_uq')
      .on(table.prev_version_id)
      .where(sql`prev_version_id IS NOT NULL`),
    check('tier_version_interval_check', sql`${table.valid_to} IS NULL OR ${table.valid_to} > ${table.valid_from}`),
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
      leader_epoch: runLedger.leader_epoch,
    })
    .from(runLedger),
);

/** Epoch ms as the ISO text 0.1.0 stored (`Date#toISOString()`); exact to the millisecond. */
const isoOf = (column: string) => `CAST(strftime('%Y-%m-%dT%H:%M:%fZ', ${column} / 1000.0, 'unixepoch') AS TEXT)`;

/** The tracked values' direction, by the rules the alerts use (src/alerts/classify.ts). */
const TIGHTER =
  'v.initial_margin > p.initial_margin OR v.maintenance_margin > p.maintenance_margin OR v.max_notional < p.max_notional';
const LOOSER =
  'v.initial_margin < p.initial_margin OR v.maintenance_margin < p.maintenance_margin OR v.max_notional > p.max_notional';
const CHANGED_COLUMNS =
  `'[' || rtrim(` +
  `CASE WHEN p.initial_margin IS NOT v.initial_margin THEN '"initial_margin",' ELSE '' END || ` +
  `CASE WHEN p.maintenance_margin IS NOT v.maintenance_margin THEN '"maintenance_margin",' ELSE '' END || ` +
  `CASE WHEN p.max_notional IS NOT v.max_notional THEN '"max_notional",' ELSE '' END, ',') || ']'`;

/** The columns of a change, after its run and its time (the feed's epoch ms, the view's ISO text). */
const changeColumns = () => ({
  account_id: text(),
  symbol: text(),
  leverage: text(),
  change: text({ enum: CHANGE_KINDS }),
  changed_columns: text(),
  old_initial_margin: real(),
  new_initial_margin: real(),
  old_maintenance_margin: real(),
  new_maintenance_margin: real(),
  old_max_notional: real(),
  new_max_notional: real(),
  leverage_value: real(),
  classification: text(),
  baseline: integer(),
});

/**
 * The change feed, derived from the versions (internal: the query commands read it; people read
 * `tier_changes`). observed_ms is epoch ms, so a time window walks the version indexes.
 * - every version is a change at its valid_from: `changed` when it replaced a version
 *   (prev_version_id), else `added`;
 * - a closed version that no version replaced is a `removed` at its valid_to, by the account's
 *   successful run observed then.
 */
export const tierChangeFeed = sqliteView('tier_change_feed', {
  run_id: integer(),
  observed_ms: integer(),
  ...changeColumns(),
}).as(
  sql.raw(
    `SELECT v.run_id AS run_id, v.valid_from AS observed_ms, v.account_id AS account_id, v.symbol AS symbol, v.leverage AS leverage, ` +
      `CAST(CASE WHEN v.prev_version_id IS NULL THEN 'added' ELSE 'changed' END AS TEXT) AS change, ` +
      `CAST(CASE WHEN v.prev_version_id IS NULL THEN '[]' ELSE ${CHANGED_COLUMNS} END AS TEXT) AS changed_columns, ` +
      `p.initial_margin AS old_initial_margin, v.initial_margin AS new_initial_margin, ` +
      `p.maintenance_margin AS old_maintenance_margin, v.maintenance_margin AS new_maintenance_margin, ` +
      `p.max_notional AS old_max_notional, v.max_notional AS new_max_notional, ` +
      `CAST(v.leverage AS REAL) AS leverage_value, ` +
      `CAST(CASE WHEN v.prev_version_id IS NULL THEN 'loosening' ` +
      `WHEN (${TIGHTER}) THEN CASE WHEN (${LOOSER}) THEN 'mixed' ELSE 'tightening' END ` +
      `WHEN (${LOOSER}) THEN 'loosening' ELSE 'mixed' END AS TEXT) AS classification, ` +
      `r.baseline AS baseline ` +
      `FROM tier_version v JOIN run_ledger r ON r.run_id = v.run_id LEFT JOIN tier_version p ON p.version_id = v.prev_version_id ` +
      `UNION ALL ` +
      `SELECT (SELECT c.run_id FROM run_ledger c WHERE c.status = 'ok' AND c.account_id = v.account_id AND c.observed_at = ${isoOf('v.valid_to')}), ` +
      `v.valid_to, v.account_id, v.symbol, v.leverage, 'removed', '[]', ` +
      `v.initial_margin, NULL, v.maintenance_margin, NULL, v.max_notional, NULL, CAST(v.leverage AS REAL), 'tightening', 0 ` +
      `FROM tier_version v WHERE v.valid_to IS NOT NULL ` +
      `AND NOT EXISTS (SELECT 1 FROM tier_version s WHERE s.prev_version_id = v.version_id)`,
  ),
);

const versionViewColumns = {
  account_id: text(),
  symbol: text(),
  leverage: text(),
  initial_margin: real(),
  maintenance_margin: real(),
  max_notional: real(),
  exchange_id: text(),
  valid_from: text(),
  valid_to: text(),
  run_id: integer(),
  leverage_value: real(),
};

const SELECT_VERSIONS =
  `SELECT account_id, symbol, leverage, initial_margin, maintenance_margin, max_notional, exchange_id, ` +
  `${isoOf('valid_from')} AS valid_from, ${isoOf('valid_to')} AS valid_to, run_id, CAST(leverage AS REAL) AS leverage_value ` +
  `FROM tier_version`;

export const tierVersionsView = sqliteView('tier_versions', versionViewColumns).as(sql.raw(SELECT_VERSIONS));

export const tiersCurrentView = sqliteView('tiers_current', versionViewColumns).as(
  sql.raw(`${SELECT_VERSIONS} WHERE valid_to IS NULL`),
);

export const tierChangesView = sqliteView('tier_changes', {
  run_id: integer(),
  observed_at: text(),
  ...changeColumns(),
}).as(
  sql.raw(
    `SELECT run_id, ${isoOf('observed_ms')} AS observed_at, account_id, symbol, leverage, change, changed_columns, ` +
      'old_initial_margin, new_initial_margin, old_maintenance_margin, new_maintenance_margin, old_max_notional, new_max_notional, ' +
      'leverage_value, classification, baseline FROM tier_change_feed',
  ),
);

/** The public views' column lists, in order: the documented contract. */
export const VIEW_COLUMNS = {
  runs: [
    'run_id',
    'account_id',
    'endpoint',
    'started_at',
    'observed_at',
    'finished_at',
    'status',
    'pages',
    'tiers',
    'changes',
    'error_code',
    'error_message',
    'public_key',
    'leader_epoch',
  ],
  tier_versions: [
    'account_id',
    'symbol',
    'leverage',
    'initial_margin',
    'maintenance_margin',
    'max_notional',
    'exchange_id',
    'valid_from',
    'valid_to',
    'run_id',
    'leverage_value',
  ],
  tiers_current: [
    'account_id',
    'symbol',
    'leverage',
    'initial_margin',
    'maintenance_margin',
    'max_notional',
    'exchange_id',
    'valid_from',
    'valid_to',
    'run_id',
    'leverage_value',
  ],
  tier_changes: [
    'run_id',
    'observed_at',
    'account_id',
    'symbol',
    'leverage',
    'change',
    'changed_columns',
    'old_initial_margin',
    'new_initial_margin',
    'old_maintenance_margin',
    'new_maintenance_margin',
    'old_max_notional',
    'new_max_notional',
    'leverage_value',
    'classification',
    'baseline',
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
    index('alert_outbox_pending_idx')
      .on(table.url, table.outbox_id)
      .where(sql`status = 'pending'`),
  ],
);

/** Small persisted facts of the alerting, e.g. whether a `stale` notification is outstanding. */
export const alertState = sqliteTable('alert_state', {
  key: text().primaryKey(),
  value: text().notNull(),
  updated_at: text().notNull(),
});
