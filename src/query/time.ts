/**
 * Time arguments of the query commands (`--at`, `--since`, `--until`, FROM, TO): pure parsing into a
 * TimeSpec, then resolution to an ISO instant (a run id needs the database, so that part is separate).
 *
 * Accepted forms, and nothing else:
 * - an ISO-8601 date (`2026-10-01`, midnight UTC) or instant (`2026-10-01T12:00`, `…T12:00:00Z`,
 *   `…T12:00:00.250+02:00`, a space instead of the T); no offset means UTC;
 * - a relative age: a positive whole number and a unit, `s`, `m`, `h`, `d` or `w` (`90m`, `36h`, `7d`);
 * - `now`;
 * - `run:<id>`: that run's observed_at.
 */
import { TierwatchError } from '../errors.ts';

export type TimeSpec = { kind: 'instant'; iso: string } | { kind: 'run'; runId: number };

/** The accepted forms, for error messages and --help. */
export const TIME_FORMS =
  'an ISO date or instant (2026-10-01, 2026-10-01T12:00:00Z; no offset means UTC), ' +
  'a relative age (90m, 36h, 7d; units s m h d w), `now`, or a run id (run:42)';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

const ISO_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

function rejection(flag: string, text: string, why?: string): TierwatchError {
  return new TierwatchError(
    'USAGE',
    `Expected \`${flag}\` to be ${TIME_FORMS}; got ${JSON.stringify(text)}${why ? ` (${why})` : ''}.`,
  );
}

/**
 * Parses one time argument. `now` anchors relative ages and `now` itself; `flag` names the argument
 * in the error message. Throws TierwatchError('USAGE') listing the accepted forms for anything else,
 * including impossible dates such as 2026-02-30. Pure: never reads the clock.
 */
export function parseTimeArgument(text: string, now: Date, flag: string): TimeSpec {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'now') return { kind: 'instant', iso: now.toISOString() };

  const run = /^run:(\d{1,15})$/i.exec(trimmed);
  if (run) return { kind: 'run', runId: Number(run[1]) };

  const age = /^(\d{1,9})([smhdw])$/i.exec(trimmed);
  if (age) {
    const ms = Number(age[1]) * UNIT_MS[age[2]!.toLowerCase()]!;
    const at = new Date(now.getTime() - ms);
    if (Number.isNaN(at.getTime())) throw rejection(flag, text, 'too far back');
    return { kind: 'instant', iso: at.toISOString() };
  }

  const iso = ISO_PATTERN.exec(trimmed);
  if (iso) return { kind: 'instant', iso: isoInstant(iso, flag, text) };

  throw rejection(flag, text);
}

function isoInstant(match: RegExpExecArray, flag: string, text: string): string {
  const [, y, mo, d, h = '00', mi = '00', s = '00', fraction = '', offset = 'Z'] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const ms = Math.floor(Number(`0.${fraction || '0'}`) * 1000);
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(local);
  // Date.UTC rolls 2026-02-30 over to March; a round trip catches every impossible field.
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    throw rejection(flag, text, 'no such date or time');
  }
  let offsetMinutes = 0;
  if (offset.toUpperCase() !== 'Z') {
    const parts = /^([+-])(\d{2}):?(\d{2})$/.exec(offset)!;
    const hours = Number(parts[2]);
    const minutes = Number(parts[3]);
    if (hours > 23 || minutes > 59) throw rejection(flag, text, 'no such offset');
    offsetMinutes = (parts[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  return new Date(local - offsetMinutes * 60_000).toISOString();
}

/** What resolving a run id needs from the history: the run's observed_at, or null when it has none. */
export type RunInstantLookup = (runId: number) => { observed_at: string | null; status: string } | undefined;

/**
 * Turns a TimeSpec into an ISO instant with milliseconds. A run id that does not exist, or a run that
 * never observed anything (it failed before its last page), throws USAGE naming it.
 */
export function resolveTime(spec: TimeSpec, lookupRun: RunInstantLookup, flag: string): string {
  if (spec.kind === 'instant') return spec.iso;
  const run = lookupRun(spec.runId);
  if (run === undefined) {
    throw new TierwatchError('USAGE', `\`${flag}\`: there is no run ${spec.runId} in this history.`);
  }
  if (run.observed_at === null) {
    throw new TierwatchError(
      'USAGE',
      `\`${flag}\`: run ${spec.runId} has no observed_at (its status is ${run.status}); use a successful run, see \`tierwatch runs\`.`,
    );
  }
  return run.observed_at;
}
