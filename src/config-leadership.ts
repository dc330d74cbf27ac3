/**
 * The settings of leadership among several collectors on one Postgres history (store/pg/lease.ts,
 * collect/leader-gate.ts). They bound how fast a standby takes over: a leader that dies, freezes or
 * loses the network is replaced within TIERWATCH_LEASE_TTL + TIERWATCH_LEASE_POLL (15 s + 5 s by
 * default). Ignored on SQLite, where the writer lock makes one process the only writer.
 */
import { TierwatchError } from './errors.ts';
import type { Reader } from './config-reader.ts';
import type { LeaseSettings } from './store/pg/lease.ts';

export interface LeadershipConfig {
  lease: LeaseSettings;
  /** A leader whose sweeps all failed on the exchange this many times in a row steps down. */
  stepDownAfter: number;
}

const HOUR_MS = 3_600_000;

export function readLeadership(reader: Reader): LeadershipConfig {
  const ttlMs = reader.duration('TIERWATCH_LEASE_TTL', 15_000, { maxMs: HOUR_MS });
  const renewEveryMs = reader.duration('TIERWATCH_LEASE_RENEW', Math.min(5_000, Math.floor(ttlMs / 3)), {
    maxMs: HOUR_MS,
  });
  const pollEveryMs = reader.duration('TIERWATCH_LEASE_POLL', Math.min(5_000, ttlMs), { maxMs: HOUR_MS });
  if (ttlMs < 1000) {
    throw new TierwatchError('CONFIG_INVALID', `Expected \`TIERWATCH_LEASE_TTL\` to be at least 1s, got ${ttlMs} ms.`);
  }
  // Two renewals must fit in a lease, so one slow or failed renewal does not lose it.
  if (renewEveryMs * 2 > ttlMs) {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `Expected \`TIERWATCH_LEASE_RENEW\` (${renewEveryMs} ms) to be at most half of \`TIERWATCH_LEASE_TTL\` (${ttlMs} ms).`,
    );
  }
  return {
    lease: {
      ttlMs,
      renewEveryMs,
      pollEveryMs,
      // The server ends a frozen leader's open transaction within 2 × this, well inside the lease
      // (lease.ts: a takeover waits for that transaction).
      writeTimeoutMs: Math.min(5_000, Math.floor(ttlMs / 3)),
      acquireLockWaitMs: Math.min(2_000, Math.max(100, Math.floor(pollEveryMs / 2))),
    },
    stepDownAfter: reader.integer('TIERWATCH_STEP_DOWN_AFTER', 3, 0, 1000),
  };
}
