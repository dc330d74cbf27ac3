/**
 * Test-only crash points: the crash tests (test/crash-*.test.ts) set `TIERWATCH_TEST_CRASH_AT` to
 * one of the points below and the process kills itself with SIGKILL when it gets there, as a power
 * cut or the OOM killer would: no `finally`, no ROLLBACK, no close. Unset (always, outside those
 * tests) every call is a no-op. This module is the only reader of the variable.
 *
 * - `in-transaction`: inside the sweep's write transaction, after every write, before COMMIT
 * - `between-pages`: after the first leverage page arrived, before the next is asked for
 * - `after-commit`: after the sweep's transaction committed, before the sweep returns
 */
export const CRASH_POINTS = ['in-transaction', 'between-pages', 'after-commit'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const armed: string | undefined = process.env.TIERWATCH_TEST_CRASH_AT;

/** Kills this process with SIGKILL when `point` is the armed crash point; otherwise returns. */
export function crashPoint(point: CrashPoint): void {
  if (armed !== point) return;
  process.stderr.write(`tierwatch: TIERWATCH_TEST_CRASH_AT=${point}: killing this process now\n`);
  process.kill(process.pid, 'SIGKILL');
}
