/**
 * Configuration: environment variables, overridden by command-line flags, validated into a frozen
 * Config. Every message names the variable (or flag) at fault and quotes what it got. Secrets are
 * never held here as values that could be logged: only where to read them from, and they are read
 * at every sweep (`resolveCredentials`) so that keys in `*_FILE`s rotate without a restart.
 */
import { isIP } from 'node:net';
import { createTask, validateDetailed } from 'node-cron';
import { TierwatchError } from './errors.ts';
import { invalid, parseByteSize, Reader, type Env, type Overrides } from './config-reader.ts';
import { CA_FILE_MAX_BYTES, readBoundedFile } from './config-file.ts';
import { unknownVariables, type UnknownVariable } from './config-names.ts';
import { readAlerts, redactUrl, type AlertsConfig } from './config-alerts.ts';
import { readDatabase, type DatabaseTarget } from './config-database.ts';
import { readLeadership, type LeadershipConfig } from './config-leadership.ts';
import { PRIMARY_ACCOUNT } from './history/tier.ts';
import { normalizeEndpoint } from './qfex/endpoint.ts';
import { LOG_LEVELS } from './log.ts';
import type { LevelWithSilent } from 'pino';

export const DEFAULT_WS_URL = 'wss://trade.qfex.com';
export const DEFAULT_SCHEDULE = '*/5 * * * *';

/** Where a secret comes from. The value itself is read only when a sweep needs it. */
export type SecretSource =
  { from: 'env'; variable: string; value: string } | { from: 'file'; variable: string; path: string };

export interface Config {
  wsUrl: string;
  /** The URL without query string: what a database is bound to (see normalizeEndpoint). */
  endpoint: string;
  publicKey: string | null;
  secretKey: SecretSource | null;
  jwt: SecretSource | null;
  accountIds: string[];
  /** PEM text of an extra certificate authority (QFEX_CA_FILE). */
  ca: string | null;
  caFile: string | null;
  /** The history: a SQLite file (the default) or a Postgres database (TIERWATCH_DB=postgres://…). */
  database: DatabaseTarget;
  schedule: string;
  pageSize: number;
  maxPages: number;
  /** Bounds of one sweep: tiers held, bytes in one frame, wall time from start to commit. */
  maxTiers: number;
  maxFrameBytes: number;
  sweepTimeoutMs: number;
  timeouts: { connectMs: number; authMs: number; requestMs: number; idleMs: number };
  /** Attempts for one page answered RateLimited / ServerError. */
  pageRetries: number;
  /** Fresh-connection attempts for a sweep that failed on the network. */
  sweepRetries: number;
  shiftRetries: number;
  backoff: { baseMs: number; maxMs: number };
  maxRemovalRatio: number;
  shutdownTimeoutMs: number;
  healthMaxAgeMs: number | null;
  httpPort: number | null;
  httpHost: string;
  logLevel: LevelWithSilent;
  alerts: AlertsConfig;
  /** Postgres only: the leadership lease and when a leader steps down. */
  leadership: LeadershipConfig;
}

export { DEFAULT_DB_PATH, requireSqlitePath, type DatabaseTarget, type PostgresUrl } from './config-database.ts';
export { redactUrl, WEBHOOK_FORMATS, type AlertsConfig, type WebhookFormat } from './config-alerts.ts';
/** Flag values given on the command line, keyed by the environment variable they override. */
export { checkSecretFiles, requireCredentials, resolveCredentials, resolveWebhookSecret } from './credentials.ts';
export {
  checkDuration,
  DURATION_FORMS,
  MAX_TIMER_MS,
  parseByteSize,
  parseDuration,
  type DurationLimits,
  type Overrides,
} from './config-reader.ts';

/** Which variables are secrets: they have no flag, and their values are never shown. */
export const SECRET_VARIABLES = ['QFEX_SECRET_KEY', 'QFEX_JWT', 'TIERWATCH_WEBHOOK_SECRET'] as const;

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function readWsUrl(reader: Reader): { wsUrl: string; endpoint: string } {
  const raw = reader.raw('QFEX_WS_URL');
  const text = raw?.value ?? DEFAULT_WS_URL;
  const name = raw?.name ?? 'QFEX_WS_URL';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(name, 'a wss:// URL such as wss://trade.qfex.com', text);
  }
  if (url.protocol === 'ws:') {
    if (!isLoopbackHost(url.hostname)) {
      throw new TierwatchError(
        'CONFIG_INVALID',
        `\`${name}\` uses plain ws:// for ${url.hostname}; unencrypted connections are allowed only to a loopback host (127.0.0.1, ::1, localhost). Use wss://.`,
      );
    }
  } else if (url.protocol !== 'wss:') {
    throw invalid(name, 'a wss:// URL such as wss://trade.qfex.com', text);
  }
  if (url.username || url.password) {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `\`${name}\` must not carry credentials; use QFEX_PUBLIC_KEY and QFEX_SECRET_KEY.`,
    );
  }
  // A fragment is never sent to the server; one here is a paste error (and broke every sweep).
  if (text.includes('#')) {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `\`${name}\` must not have a #fragment (a WebSocket URL has none), got ${JSON.stringify(text)}.`,
    );
  }
  return { wsUrl: url.toString(), endpoint: normalizeEndpoint(url.href) };
}

function readSecret(reader: Reader, env: Env, variable: string): SecretSource | null {
  reader.consulted.add(variable);
  const direct = env[variable]?.trim() ? env[variable].trim() : null;
  const fileVar = `${variable}_FILE`;
  const file = reader.raw(fileVar);
  if (direct !== null && file !== null) {
    throw new TierwatchError('CONFIG_INVALID', `Set either \`${variable}\` or \`${fileVar}\`, not both.`);
  }
  if (direct !== null) return { from: 'env', variable, value: direct };
  if (file !== null) return { from: 'file', variable: fileVar, path: file.value };
  return null;
}

const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

function readAccounts(reader: Reader): string[] {
  const raw = reader.raw('QFEX_ACCOUNT_IDS');
  if (raw === null) return [PRIMARY_ACCOUNT];
  const ids = raw.value.split(',').map((id) => id.trim());
  for (const id of ids) {
    if (!ACCOUNT_ID.test(id)) {
      throw invalid(raw.name, 'a comma-separated list of `primary` and/or subaccount ids', raw.value);
    }
  }
  const duplicate = ids.find((id, index) => ids.indexOf(id) !== index);
  if (duplicate !== undefined) {
    throw new TierwatchError('CONFIG_INVALID', `\`${raw.name}\` lists ${JSON.stringify(duplicate)} twice.`);
  }
  return ids;
}

function readSchedule(reader: Reader): string {
  const raw = reader.raw('TIERWATCH_SCHEDULE');
  if (raw === null) return DEFAULT_SCHEDULE;
  const result = validateDetailed(raw.value);
  if (!result.valid) {
    const reasons = result.errors.map((error) => `${error.field}: ${error.message}`).join('; ');
    throw new TierwatchError(
      'CONFIG_INVALID',
      `Expected \`${raw.name}\` to be a cron expression such as "*/5 * * * *" (five fields, or six with seconds first), got ${JSON.stringify(raw.value)}: ${reasons}.`,
    );
  }
  return raw.value;
}

function readCa(reader: Reader): { ca: string | null; caFile: string | null } {
  const raw = reader.raw('QFEX_CA_FILE');
  if (raw === null) return { ca: null, caFile: null };
  const pem = readBoundedFile(raw.name, raw.value, CA_FILE_MAX_BYTES);
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `\`${raw.name}\` names ${JSON.stringify(raw.value)}, which holds no PEM certificate.`,
    );
  }
  return { ca: pem, caFile: raw.value };
}

// ---- bounds of one sweep (issue 10): what it holds, one frame, how long it runs ----

export const DEFAULT_MAX_TIERS = 200_000;
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SWEEP_TIMEOUT_MS = 2 * 60_000;

/** The shortest gap between the schedule's next firings (UTC), looking a few dozen firings ahead. */
function shortestGapMs(schedule: string): number {
  const task = createTask(schedule, () => undefined, { timezone: 'UTC' });
  try {
    const firings = task.getNextRuns(24).map((date) => date.getTime());
    let shortest = Infinity;
    for (let i = 1; i < firings.length; i += 1) shortest = Math.min(shortest, firings[i]! - firings[i - 1]!);
    return shortest;
  } finally {
    void task.destroy();
  }
}

function readSweepBounds(reader: Reader): { maxTiers: number; maxFrameBytes: number; sweepTimeoutMs: number } {
  const frame = reader.raw('TIERWATCH_MAX_FRAME_BYTES');
  let maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  if (frame !== null) {
    const bytes = parseByteSize(frame.value);
    // Below 64 KiB a full page of 1000 tiers no longer fits; above 256 MiB one frame alone could exhaust the heap.
    if (bytes === null || bytes < 64 * 1024 || bytes > 256 * 1024 * 1024) {
      throw invalid(frame.name, 'a size from 64KiB to 256MiB, such as 4MiB', frame.value);
    }
    maxFrameBytes = bytes;
  }
  const sweepTimeoutMs = reader.duration('TIERWATCH_SWEEP_TIMEOUT', DEFAULT_SWEEP_TIMEOUT_MS);
  const timeout = reader.raw('TIERWATCH_SWEEP_TIMEOUT');
  // Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer one fires at once.
  if (timeout !== null && (sweepTimeoutMs < 1000 || sweepTimeoutMs > 2_147_483_647)) {
    throw invalid(timeout.name, 'a duration from 1s to 24d, such as 2m', timeout.value);
  }
  if (timeout !== null) {
    // A deadline as long as the schedule's gap would let one slow sweep swallow the next firing.
    const gapMs = shortestGapMs(readSchedule(reader));
    if (sweepTimeoutMs >= gapMs) {
      throw new TierwatchError(
        'CONFIG_INVALID',
        `Expected \`${timeout.name}\` to be below the schedule's shortest gap between firings (${gapMs} ms), got ${JSON.stringify(timeout.value)}.`,
      );
    }
  }
  return {
    maxTiers: reader.integer('TIERWATCH_MAX_TIERS', DEFAULT_MAX_TIERS, 1, 100_000_000),
    maxFrameBytes,
    sweepTimeoutMs,
  };
}

function readLogLevel(reader: Reader): LevelWithSilent {
  const raw = reader.raw('LOG_LEVEL');
  if (raw === null) return 'info';
  const level = raw.value.toLowerCase() as LevelWithSilent;
  if (!LOG_LEVELS.includes(level)) throw invalid(raw.name, `one of ${LOG_LEVELS.join(', ')}`, raw.value);
  return level;
}

/**
 * Builds the Config. Credentials are not required here (commands such as `migrate` need none):
 * `requireCredentials` checks them for the commands that talk to the exchange.
 */
export function loadConfig(env: Env = process.env, overrides: Overrides = {}): Config {
  return loadConfigChecked(env, overrides).config;
}

/**
 * loadConfig, plus the TIERWATCH_* / QFEX_* variables in `env` that no setting reads (typos such
 * as TIERWATCH_SCHEDUEL), each with the nearest known name: for a warning at start.
 */
export function loadConfigChecked(
  env: Env = process.env,
  overrides: Overrides = {},
): { config: Config; unknown: UnknownVariable[] } {
  const reader = new Reader(env, overrides);
  const config = readConfig(reader, env);
  return { config, unknown: unknownVariables(Object.keys(env), reader.consulted) };
}

function readConfig(reader: Reader, env: Env): Config {
  const httpPort =
    reader.raw('TIERWATCH_HTTP_PORT') === null ? null : reader.integer('TIERWATCH_HTTP_PORT', 0, 0, 65535);
  // Not a timer (it is compared with ages), so not held to the timer limit: a monthly schedule needs more.
  const healthMaxAge =
    reader.raw('TIERWATCH_HEALTH_MAX_AGE') === null
      ? null
      : reader.duration('TIERWATCH_HEALTH_MAX_AGE', 0, { maxMs: 3650 * 86_400_000 });
  const config: Config = {
    ...readWsUrl(reader),
    publicKey: reader.raw('QFEX_PUBLIC_KEY')?.value ?? null,
    secretKey: readSecret(reader, env, 'QFEX_SECRET_KEY'),
    jwt: readSecret(reader, env, 'QFEX_JWT'),
    accountIds: readAccounts(reader),
    ...readCa(reader),
    database: readDatabase(reader),
    schedule: readSchedule(reader),
    pageSize: reader.integer('TIERWATCH_PAGE_SIZE', 1000, 1, 1000),
    maxPages: reader.integer('TIERWATCH_MAX_PAGES', 10_000, 1, 1_000_000),
    ...readSweepBounds(reader),
    timeouts: {
      connectMs: reader.duration('TIERWATCH_CONNECT_TIMEOUT', 10_000),
      authMs: reader.duration('TIERWATCH_AUTH_TIMEOUT', 10_000),
      requestMs: reader.duration('TIERWATCH_REQUEST_TIMEOUT', 10_000),
      idleMs: reader.duration('TIERWATCH_IDLE_TIMEOUT', 60_000),
    },
    pageRetries: reader.integer('TIERWATCH_PAGE_RETRIES', 5, 0, 100),
    sweepRetries: reader.integer('TIERWATCH_SWEEP_RETRIES', 2, 0, 100),
    shiftRetries: reader.integer('TIERWATCH_SHIFT_RETRIES', 3, 0, 100),
    backoff: {
      baseMs: reader.duration('TIERWATCH_BACKOFF_BASE', 500, { allowZero: true }),
      maxMs: reader.duration('TIERWATCH_BACKOFF_MAX', 30_000, { allowZero: true }),
    },
    maxRemovalRatio: reader.ratio('TIERWATCH_MAX_REMOVAL_RATIO', 0.5),
    shutdownTimeoutMs: reader.duration('TIERWATCH_SHUTDOWN_TIMEOUT', 10_000),
    healthMaxAgeMs: healthMaxAge,
    httpPort,
    httpHost: reader.string('TIERWATCH_HTTP_HOST', '0.0.0.0'),
    logLevel: readLogLevel(reader),
    alerts: readAlerts(reader, readSecret(reader, env, 'TIERWATCH_WEBHOOK_SECRET')),
    leadership: readLeadership(reader),
  };
  return Object.freeze(config);
}

/** The configuration as it may be logged: where secrets come from, never what they are. */
export function describeConfig(config: Config): Record<string, unknown> {
  const describeSecret = (source: SecretSource | null) =>
    source === null
      ? null
      : source.from === 'file'
        ? `file ${source.path} (${source.variable})`
        : `set (${source.variable})`;
  return {
    endpoint: config.endpoint,
    publicKey: config.publicKey,
    secretKey: describeSecret(config.secretKey),
    jwtSource: describeSecret(config.jwt),
    accounts: config.accountIds,
    caFile: config.caFile,
    db: config.database.kind === 'sqlite' ? config.database.path : config.database.url.display,
    schedule: `${config.schedule} (UTC)`,
    pageSize: config.pageSize,
    maxPages: config.maxPages,
    maxTiers: config.maxTiers,
    maxFrameBytes: config.maxFrameBytes,
    sweepTimeoutMs: config.sweepTimeoutMs,
    timeouts: config.timeouts,
    pageRetries: config.pageRetries,
    sweepRetries: config.sweepRetries,
    backoff: config.backoff,
    maxRemovalRatio: config.maxRemovalRatio,
    httpPort: config.httpPort,
    httpHost: config.httpHost,
    logLevel: config.logLevel,
    // Only where it applies: several collectors share a Postgres history.
    ...(config.database.kind === 'postgres'
      ? {
          leadership: {
            leaseTtlMs: config.leadership.lease.ttlMs,
            leaseRenewMs: config.leadership.lease.renewEveryMs,
            leasePollMs: config.leadership.lease.pollEveryMs,
            stepDownAfter: config.leadership.stepDownAfter,
          },
        }
      : {}),
    alerts: {
      webhooks: config.alerts.webhookUrls.map(redactUrl),
      format: config.alerts.format,
      symbols: config.alerts.symbols,
      only: config.alerts.only,
      secret: describeSecret(config.alerts.secret),
      timeoutMs: config.alerts.timeoutMs,
      retries: config.alerts.retries,
      maxAttempts: config.alerts.maxAttempts,
      maxAgeMs: config.alerts.maxAgeMs,
    },
  };
}
