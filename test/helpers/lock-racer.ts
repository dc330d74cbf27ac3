/**
 * One contender in the writer-lock race test: `node lock-racer.ts DB_PATH START_AT_MS`. Waits until
 * START_AT_MS (so contenders start together), tries to take the writer lock, and prints one JSON
 * line: `{"pid":…,"won":true}` (then holds the lock for a while) or `{"pid":…,"won":false,"message":…}`.
 */
import { acquireWriterLock } from '../../src/store/writer-lock.ts';

const [dbPath, startAt] = process.argv.slice(2);
while (Date.now() < Number(startAt)) {
  /* spin: a timer would add its own jitter */
}
try {
  const lock = acquireWriterLock(dbPath!, `racer ${process.pid}`);
  process.stdout.write(`${JSON.stringify({ pid: process.pid, won: true })}\n`);
  setTimeout(() => lock.release(), 800);
} catch (error) {
  process.stdout.write(
    `${JSON.stringify({ pid: process.pid, won: false, code: (error as { code?: string }).code, message: (error as Error).message })}\n`,
  );
}
