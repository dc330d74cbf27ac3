/**
 * One contender in the Postgres migration race test: `node pg-migrate-racer.ts URL START_AT_MS`.
 * Waits until START_AT_MS (so contenders start together), migrates, and prints one JSON line:
 * `{"pid":…,"applied":n,"total":n}` or `{"pid":…,"code":…,"message":…}`.
 */
import { migratePostgres } from '../../src/store/pg/migrate.ts';

const [url, startAt] = process.argv.slice(2);
while (Date.now() < Number(startAt)) {
  /* spin: a timer would add its own jitter */
}
try {
  const result = await migratePostgres(url!);
  process.stdout.write(`${JSON.stringify({ pid: process.pid, ...result })}\n`);
} catch (error) {
  process.stdout.write(
    `${JSON.stringify({ pid: process.pid, code: (error as { code?: string }).code, message: (error as Error).message })}\n`,
  );
}
