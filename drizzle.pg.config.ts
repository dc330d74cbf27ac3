/**
 * drizzle-kit configuration for the Postgres twin of the schema: `npm run db:generate:pg` turns
 * src/store/pg/schema.ts into a new SQL migration under migrations-pg/. Change it together with
 * src/store/schema.ts (test/pg-schema.test.ts holds the two to one contract), commit the output, and
 * never edit a migration that has been committed.
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/store/pg/schema.ts',
  out: './migrations-pg',
});
