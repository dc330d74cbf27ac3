/**
 * What the simulator's handler modules share (connection.ts, handshake.ts, leverage.ts,
 * page-faults.ts): built once by server.ts, so each handler takes the server's state as one object
 * instead of reaching into the server class.
 */
import type { Logger } from '../log.ts';
import type { TierBook } from './book.ts';
import type { FaultQueue } from './faults.ts';
import type { LegacyOptions } from './frames.ts';
import type { Hostility } from './hostile.ts';
import type { SimStats, SimulatorOptions } from './server.ts';

export interface SimContext {
  readonly options: SimulatorOptions;
  readonly log: Logger;
  readonly legacy: LegacyOptions;
  /** Live counters, also the public `sim.stats`. */
  readonly stats: SimStats;
  readonly faults: FaultQueue;
  /** Unsolicited frames, stale answers, drips, oversized and endless big pages (hostile.ts). */
  readonly hostility: Hostility;
  readonly book: TierBook;
}

/** A JSON object (not null, not an array): what every client message and its `params` must be. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
