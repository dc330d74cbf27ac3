/**
 * The shape of a live tierwatch database, read from the database itself (SQLite: sqlite_master and
 * the pragmas; Postgres: information_schema and pg_catalog) in one form for both, so
 * test/pg-schema.test.ts can compare the two dialects: tables with their columns in order (kind,
 * nullability, key, default), checks and foreign keys; indexes with their columns, uniqueness and
 * partial predicate; views with their columns in order.
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { POSTGRES_ONLY } from '../../src/store/pg/schema.ts';

export interface Column {
  name: string;
  kind: string;
  notNull: boolean;
  pk: boolean;
  default: string | null;
}
export interface Index {
  name: string;
  table: string;
  columns: string[];
  unique: boolean;
  predicate: string | null;
}
export interface Shape {
  tables: Record<string, { columns: Column[]; checks: string[]; foreignKeys: string[] }>;
  indexes: Index[];
  views: Record<string, string[]>;
}

/** `status = 'ok'` whichever way the database prints it back. */
function normalizePredicate(text: string | null): string | null {
  if (text === null) return null;
  let out = text
    .replace(/::text/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  while (out.startsWith('(') && out.endsWith(')')) out = out.slice(1, -1).trim();
  return out;
}

function normalizeDefault(text: string | null): string | null {
  return text === null ? null : text.replace(/::text$/, '');
}

export function describeSqlite(sqlite: Database.Database): Shape {
  const shape: Shape = { tables: {}, indexes: [], views: {} };
  const objects = sqlite
    .prepare(
      `SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name <> '__drizzle_migrations' ORDER BY name`,
    )
    .all() as Array<{ type: string; name: string; tbl_name: string; sql: string | null }>;
  for (const object of objects) {
    if (object.type === 'table') {
      const columns = (
        sqlite
          .prepare('SELECT name, type, "notnull" AS nn, pk, dflt_value FROM pragma_table_info(?) ORDER BY cid')
          .all(object.name) as Array<{
          name: string;
          type: string;
          nn: number;
          pk: number;
          dflt_value: string | null;
        }>
      ).map((c) => ({
        name: c.name,
        kind: c.type.toLowerCase(),
        notNull: c.nn === 1 || c.pk > 0,
        pk: c.pk > 0,
        default: c.dflt_value,
      }));
      const checks = [...(object.sql ?? '').matchAll(/CONSTRAINT "(\w+)" CHECK/g)].map((m) => m[1] as string).sort();
      const foreignKeys = (
        sqlite.prepare('SELECT "from", "table", "to" FROM pragma_foreign_key_list(?)').all(object.name) as Array<{
          from: string;
          table: string;
          to: string;
        }>
      )
        .map((fk) => `${fk.from} -> ${fk.table}.${fk.to}`)
        .sort();
      shape.tables[object.name] = { columns, checks, foreignKeys };
    } else if (object.type === 'index' && object.sql !== null) {
      const columns = (
        sqlite.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').all(object.name) as Array<{
          name: string;
        }>
      ).map((c) => c.name);
      const where = /\sWHERE\s(.*)$/is.exec(object.sql);
      shape.indexes.push({
        name: object.name,
        table: object.tbl_name,
        columns,
        unique: /^CREATE UNIQUE/i.test(object.sql),
        predicate: normalizePredicate(where?.[1] ?? null),
      });
    } else if (object.type === 'view') {
      shape.views[object.name] = (
        sqlite.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').all(object.name) as Array<{ name: string }>
      ).map((c) => c.name);
    }
  }
  return shape;
}

export const PG_KINDS: Record<string, string> = {
  bigint: 'integer',
  integer: 'integer',
  text: 'text',
  'timestamp with time zone': 'text', // SQLite's ISO-8601 text instants
  'double precision': 'real',
};

export async function describePostgres(client: pg.Client): Promise<{
  shape: Shape;
  rawTypes: Array<{ table: string; column: string; type: string; collation: string | null }>;
}> {
  const shape: Shape = { tables: {}, indexes: [], views: {} };
  const rawTypes: Array<{ table: string; column: string; type: string; collation: string | null }> = [];
  const relations = await client.query<{ name: string; kind: string }>(
    `SELECT c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') ORDER BY c.relname`,
  );
  for (const relation of relations.rows) {
    if ((POSTGRES_ONLY as readonly string[]).includes(relation.name)) continue;
    const columns = await client.query<{
      name: string;
      type: string;
      nullable: string;
      dflt: string | null;
      collation: string | null;
    }>(
      `SELECT column_name AS name, data_type AS type, is_nullable AS nullable, column_default AS dflt, collation_name AS collation
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
      [relation.name],
    );
    if (relation.kind === 'v') {
      shape.views[relation.name] = columns.rows.map((c) => c.name);
      continue;
    }
    const pk = await client.query<{ name: string }>(
      `SELECT a.attname AS name FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
        WHERE k.contype = 'p' AND k.conrelid = $1::regclass`,
      [`public.${relation.name}`],
    );
    const pkNames = new Set(pk.rows.map((r) => r.name));
    for (const c of columns.rows) {
      rawTypes.push({ table: relation.name, column: c.name, type: c.type, collation: c.collation });
    }
    const checks = await client.query<{ name: string }>(
      `SELECT conname AS name FROM pg_constraint WHERE contype = 'c' AND conrelid = $1::regclass ORDER BY conname`,
      [`public.${relation.name}`],
    );
    const foreignKeys = await client.query<{ fk: string }>(
      `SELECT fa.attname || ' -> ' || ft.relname || '.' || ta.attname AS fk
         FROM pg_constraint k
         JOIN pg_attribute fa ON fa.attrelid = k.conrelid AND fa.attnum = k.conkey[1]
         JOIN pg_class ft ON ft.oid = k.confrelid
         JOIN pg_attribute ta ON ta.attrelid = k.confrelid AND ta.attnum = k.confkey[1]
        WHERE k.contype = 'f' AND k.conrelid = $1::regclass`,
      [`public.${relation.name}`],
    );
    shape.tables[relation.name] = {
      columns: columns.rows.map((c) => ({
        name: c.name,
        kind: PG_KINDS[c.type] ?? `unexpected ${c.type}`,
        notNull: c.nullable === 'NO',
        pk: pkNames.has(c.name),
        default: normalizeDefault(c.dflt),
      })),
      checks: checks.rows.map((r) => r.name),
      foreignKeys: foreignKeys.rows.map((r) => r.fk).sort(),
    };
  }
  const indexes = await client.query<Index>(
    `SELECT i.relname AS name, t.relname AS table, ix.indisunique AS unique, pg_get_expr(ix.indpred, ix.indrelid) AS predicate,
            array(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
       FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND NOT ix.indisprimary ORDER BY i.relname`,
  );
  shape.indexes = indexes.rows
    .filter((index) => !(POSTGRES_ONLY as readonly string[]).includes(index.table))
    .map((index) => ({
      name: index.name,
      table: index.table,
      columns: index.columns,
      unique: index.unique,
      predicate: normalizePredicate(index.predicate),
    }));
  return { shape, rawTypes };
}
