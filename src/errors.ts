/**
 * Every failure tierwatch expects is a TierwatchError with a stable string code. The codes are the
 * contract: they are stored in the run ledger (`runs.error_code`), documented in the table of
 * docs/reliability.md, and mapped to exit codes in one place (`exitCodeFor`).
 */

export const ERROR_CODES = {
  // Configuration and usage: exit 2.
  CONFIG_INVALID: 'a setting is missing or invalid',
  USAGE: 'a command was called with bad arguments',
  // Reaching the exchange.
  QFEX_CONNECT: 'the exchange could not be reached (refused, unresolvable, reset)',
  QFEX_TLS: 'the TLS handshake failed, e.g. an untrusted certificate',
  QFEX_TIMEOUT: 'a handshake, auth reply or page did not arrive in time',
  QFEX_CLOSED: 'the exchange closed the socket, or it went silent (no pings)',
  QFEX_AUTH_REJECTED: 'the exchange refused the credentials',
  QFEX_RATE_LIMITED: 'the exchange kept answering RateLimited after every retry',
  QFEX_SERVER_ERROR: 'the exchange kept answering ServerError after every retry',
  QFEX_ERROR: 'the exchange answered with another error code (see the message)',
  QFEX_PROTOCOL: 'a frame did not follow the protocol (not JSON, wrong shape, binary, nested too deep)',
  QFEX_FRAME_TOO_LARGE: 'the exchange sent a frame larger than TIERWATCH_MAX_FRAME_BYTES',
  // The data itself.
  ROW_INVALID: 'a tier row broke a validation rule; the message names the row',
  PAGINATION_INCONSISTENT: 'the tier list shifted while it was being paged, on every retry',
  PAGE_LIMIT_REACHED: 'the sweep reached TIERWATCH_MAX_PAGES without an empty page',
  TIER_LIMIT_REACHED: 'the exchange listed more than TIERWATCH_MAX_TIERS tiers without an end',
  SWEEP_TIMEOUT: 'the sweep did not finish within TIERWATCH_SWEEP_TIMEOUT',
  EMPTY_SWEEP: 'the exchange returned no tiers at all',
  MASS_REMOVAL:
    'the sweep would remove more of the current tiers than TIERWATCH_MAX_REMOVAL_RATIO allows, or has lost more than that of the largest sweep of the last 24 h',
  CLOCK_BEHIND:
    "the sweep was observed before the account's last observation: the clock went back, or the history is stamped in the future",
  // The database.
  ENDPOINT_MISMATCH: 'the database belongs to another endpoint',
  DB_SCHEMA_TOO_NEW: 'the database was migrated by a newer tierwatch',
  DB_NEEDS_MIGRATION: 'a read-only open found a database an older tierwatch made: run `tierwatch migrate`',
  DB_LOCKED: 'another tierwatch process is writing to this database',
  DB_LEADERSHIP_LOST:
    "another collector took over the shared (Postgres) history: this one's lease epoch is stale, so its write was not stored",
  DB_LEADER_ELSEWHERE:
    'another collector leads the shared (Postgres) history: `tierwatch collect` did not sweep, the leader collects',
  DB_WRITE_FAILED: 'the database refused the write (disk full, read-only, corrupt)',
  DB_EMPTY: 'the history holds nothing for the question asked',
  REWOUND: 'not a failure of the run: it was discarded by `tierwatch rewind` (recorded on its ledger row)',
  DB_FOREIGN:
    'the database file belongs to another program (tables of its own, no tierwatch marker); it is left untouched',
  DB_CORRUPT: 'the database file is corrupt or not a SQLite database',
  DB_REPLACED: 'the database file was deleted or replaced while the daemon had it open',
  DB_READ_FAILED: 'the database cannot be read (permissions, or a WAL file that needs write access to the folder)',
  DISK_FULL: 'the disk (or the file size limit) is full',
  QUERY_TIMEOUT: 'a `tierwatch query` statement ran longer than its --timeout and was stopped',
  // The web view.
  HTTP_LISTEN: '`tierwatch serve` could not listen on its --host and --port (in use, not permitted, no such address)',
  // Lifecycle.
  ABORTED: 'the sweep was stopped by a shutdown signal',
  INTERNAL: 'a bug: please report it with the log line',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface TierwatchErrorOptions {
  cause?: unknown;
  /** Worth another attempt with a fresh connection (timeouts, drops, refused connections). */
  retryable?: boolean;
  /** Structured context for logs; never put a secret here. */
  details?: Record<string, unknown>;
}

export class TierwatchError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: TierwatchErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TierwatchError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

export function isTierwatchError(value: unknown, code?: ErrorCode): value is TierwatchError {
  return value instanceof TierwatchError && (code === undefined || value.code === code);
}

/** Wraps anything thrown into a TierwatchError, keeping the original as the cause. */
export function coerceError(value: unknown): TierwatchError {
  if (value instanceof TierwatchError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new TierwatchError('INTERNAL', message, { cause: value });
}

/** 2 for bad usage or configuration (a foreign database is a wrong setting), 1 for everything else that failed. */
export function exitCodeFor(error: TierwatchError): number {
  return error.code === 'CONFIG_INVALID' || error.code === 'USAGE' || error.code === 'DB_FOREIGN' ? 2 : 1;
}
