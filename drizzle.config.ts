/**
 * drizzle-kit configuration: `npx drizzle-kit generate` (or `npm run db:generate`) turns
 * src/store/schema.ts into a new SQL migration under migrations/. Commit the output; never edit a
 * migration that has been committed.
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/store/schema.ts',
  out: './migrations',
});
