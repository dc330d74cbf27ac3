/**
 * The kinds of change, apart from the schema: the query commands check `--change` against them, and
 * importing the schema would load drizzle-orm into every command (a query command never needs it).
 */
export const CHANGE_KINDS = ['added', 'removed', 'changed'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];
