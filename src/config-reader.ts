/**
 * Reading settings: the environment overridden by flags, and the value forms every setting shares
 * (integers, ratios, durations with a unit, byte sizes), each refused with a message that names the
 * variable or flag and quotes what it got. config.ts decides which settings there are.
 */
import { TierwatchError } from './errors.ts';

export type Overrides = Partial<Record<string, { value: string; flag: string }>>;

export type Env = Record<string, string | undefined>;

/**
 * Node's timers hold at most 2^31-1 ms (~24.8 days); a longer delay silently becomes 1 ms. Every
 * duration that ends up in a timer is refused above it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a duration must look like: said in every message that refuses one. */
export const DURATION_FORMS = 'a duration with a unit: 500ms, 10s, 5m, 1h or 2d';

export interface DurationLimits {
  /** Allow 0 (only where "no wait" makes sense, e.g. backoff); default false. */
  allowZero?: boolean;
  /** The largest value; default MAX_TIMER_MS (the value becomes a timer). */
  maxMs?: number;
}

export class Reader {
  private readonly env: Env;
  private readonly overrides: Overrides;
  /** Every variable asked for: what counts as a known name for the unknown-variable warning. */
  readonly consulted = new Set<string>();

  constructor(env: Env, overrides: Overrides) {
    this.env = env;
    this.overrides = overrides;
  }

  /** The raw value and the name to blame for it; an empty value counts as unset. */
  raw(variable: string): { value: string; name: string } | null {
    this.consulted.add(variable);
    const override = this.overrides[variable];
    if (override !== undefined && override.value !== '') return { value: override.value, name: override.flag };
    const value = this.env[variable];
    if (value === undefined || value.trim() === '') return null;
    return { value: value.trim(), name: variable };
  }

  string(variable: string, fallback: string): string {
    return this.raw(variable)?.value ?? fallback;
  }

  integer(variable: string, fallback: number, min: number, max: number): number {
    const raw = this.raw(variable);
    if (raw === null) return fallback;
    if (!/^\d+$/.test(raw.value) || Number(raw.value) < min || Number(raw.value) > max) {
      throw invalid(raw.name, `an integer from ${min} to ${max}`, raw.value);
    }
    return Number(raw.value);
  }

  ratio(variable: string, fallback: number): number {
    const raw = this.raw(variable);
    if (raw === null) return fallback;
    const value = Number(raw.value);
    if (!/^\d*\.?\d+$/.test(raw.value) || !(value > 0 && value <= 1)) {
      throw invalid(raw.name, 'a number greater than 0 and at most 1', raw.value);
    }
    return value;
  }

  duration(variable: string, fallbackMs: number, limits: DurationLimits = {}): number {
    const raw = this.raw(variable);
    if (raw === null) return fallbackMs;
    return checkDuration(raw.value, raw.name, limits, (message) => new TierwatchError('CONFIG_INVALID', message));
  }
}

export function invalid(name: string, expected: string, got: string): TierwatchError {
  return new TierwatchError('CONFIG_INVALID', `Expected \`${name}\` to be ${expected}, got ${JSON.stringify(got)}.`);
}

/**
 * "500ms", "10s", "1.5m", "1h", "2d" in milliseconds; null for anything else. The unit is required:
 * a bare number once meant milliseconds, so `--duration 25` ran for 25 ms.
 */
export function parseDuration(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) return null;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2]!] ?? 1;
  const ms = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(ms) ? ms : null;
}

/**
 * A duration setting or flag, checked: a unit, not zero (unless allowed), not above the limit.
 * `fail` builds the error (CONFIG_INVALID for settings, USAGE for flags).
 */
export function checkDuration(
  text: string,
  name: string,
  limits: DurationLimits,
  fail: (message: string) => TierwatchError,
): number {
  const ms = parseDuration(text);
  const quoted = JSON.stringify(text);
  if (ms === null) {
    const hint = /^\s*\d+(?:\.\d+)?\s*$/.test(text) ? ' (a bare number is ambiguous: add the unit)' : '';
    throw fail(`Expected \`${name}\` to be ${DURATION_FORMS}, got ${quoted}${hint}.`);
  }
  if (ms === 0 && limits.allowZero !== true) {
    throw fail(`Expected \`${name}\` to be a duration greater than zero, got ${quoted}.`);
  }
  const maxMs = limits.maxMs ?? MAX_TIMER_MS;
  if (ms > maxMs) {
    const why = maxMs === MAX_TIMER_MS ? " (Node's timer limit, 2^31-1 ms: a longer timer would fire after 1 ms)" : '';
    throw fail(`Expected \`${name}\` to be at most ${formatMs(maxMs)}${why}, got ${quoted}.`);
  }
  return ms;
}

function formatMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms === MAX_TIMER_MS) return `${MAX_TIMER_MS}ms (about 24.8 days)`;
  return `${ms}ms`;
}

/** "4194304", "512KiB", "4MiB" (also KB/MB, read as 1024-based): a size in bytes, or null. */
export function parseByteSize(text: string): number | null {
  const match = /^(\d+)\s*(b|kb|kib|mb|mib)?$/i.exec(text.trim());
  if (!match) return null;
  const unit = { b: 1, kb: 1024, kib: 1024, mb: 1024 * 1024, mib: 1024 * 1024 }[(match[2] ?? 'b').toLowerCase()] ?? 1;
  const bytes = Number(match[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : null;
}
