/**
 * `/healthz` of a daemon on a Postgres history: the same verdict as on SQLite (collect/health.ts:
 * every account's last successful sweep within TIERWATCH_HEALTH_MAX_AGE), judged on the SHARED
 * history — so a standby is healthy while the leader collects, and an orchestrator does not restart
 * standbys for standing by — followed by this daemon's role ("leading (epoch N)" or "standing by").
 *
 * The HTTP handler is synchronous and must not wait for the database, so the last successes are
 * read every few seconds in the background (and taken from the leader's own sweeps at once); until
 * the first read, or when reads fail, the verdict is unhealthy and says why.
 */
import type pg from 'pg';
import { numberParameters, PgReadSession } from '../store/pg/read-session.ts';
import { judgeHealth, type AccountHealth, type HealthVerdict } from './health.ts';

/** Every account's last success in the shared `runs` view (SQLite-style `?`: see read-session.ts). */
const LAST_SUCCESS_SQL = `SELECT account_id, max(observed_at) AS at FROM runs WHERE status = 'ok' AND account_id = ANY (?::text[]) GROUP BY account_id`;

function byAccount(
  accountIds: readonly string[],
  rows: Array<{ account_id: string; at: string | null }>,
): AccountHealth[] {
  const found = new Map(rows.map((row) => [row.account_id, row.at]));
  return accountIds.map((accountId) => ({ accountId, lastSuccessAt: found.get(accountId) ?? null }));
}

/**
 * `tierwatch health` on Postgres: the last successes read once in a read-only session, which also
 * refuses a database that is not migrated (DB_NEEDS_MIGRATION) and names an unreachable one without
 * its password (DB_READ_FAILED). The verdict is then judged by collect/health.ts, as on SQLite.
 */
export async function readPgAccountHealth(url: string, accountIds: readonly string[]): Promise<AccountHealth[]> {
  const session = await PgReadSession.open(url);
  try {
    return byAccount(
      accountIds,
      await session.rows<{ account_id: string; at: string | null }>(LAST_SUCCESS_SQL, {}, [accountIds]),
    );
  } finally {
    await session.close();
  }
}

/** How often the last successes are read again: a small share of any sensible health threshold. */
const REFRESH_EVERY_MS = 5_000;

export class PgHealth {
  readonly #pool: pg.Pool;
  readonly #accountIds: readonly string[];
  readonly #maxAgeMs: number;
  readonly #role: () => string;
  #accounts: AccountHealth[] | null = null;
  #failure: string | null = null;
  #timer: NodeJS.Timeout | undefined;

  constructor(pool: pg.Pool, accountIds: readonly string[], maxAgeMs: number, role: () => string) {
    this.#pool = pool;
    this.#accountIds = accountIds;
    this.#maxAgeMs = maxAgeMs;
    this.#role = role;
  }

  /** Reads every account's last success from the shared `runs` view. Never throws (the verdict says it). */
  async refresh(): Promise<AccountHealth[] | null> {
    try {
      const { text, values } = numberParameters(LAST_SUCCESS_SQL, {}, [this.#accountIds]);
      const result = await this.#pool.query<{ account_id: string; at: string | null }>(text, values);
      this.#accounts = byAccount(this.#accountIds, result.rows);
      this.#failure = null;
    } catch (error) {
      this.#failure = `the history could not be read: ${(error as Error).message}`;
    }
    return this.#accounts;
  }

  /** Reads now, then every few seconds until stop(). */
  async start(): Promise<void> {
    await this.refresh();
    const tick = (): void => {
      this.#timer = setTimeout(() => void this.refresh().finally(tick), REFRESH_EVERY_MS);
      this.#timer.unref();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** A sweep this daemon stored: its account's last success is known without a read. */
  recordSuccess(accountId: string, observedAt: string): void {
    const account = this.#accounts?.find((entry) => entry.accountId === accountId);
    if (account !== undefined && (account.lastSuccessAt === null || account.lastSuccessAt < observedAt)) {
      account.lastSuccessAt = observedAt;
    }
  }

  verdict(now: Date): HealthVerdict {
    const role = this.#role();
    if (this.#failure !== null) return { healthy: false, reason: `${this.#failure}; ${role}` };
    if (this.#accounts === null) return { healthy: false, reason: `the history has not been read yet; ${role}` };
    const verdict = judgeHealth(this.#accounts, this.#maxAgeMs, now);
    return verdict.healthy
      ? { healthy: true, summary: `${verdict.summary}; ${role}` }
      : { healthy: false, reason: `${verdict.reason}; ${role}` };
  }
}
