/**
 * How each kind of query answer is written as JSON/NDJSON (the output contract: snake_case keys as
 * in the views, `changed_columns` an array, `before`/`after` objects or null) and as CSV (flat,
 * with `old_<column>`/`new_<column>` and `changed_columns` as JSON text, as the tier_changes view).
 */
import { TRACKED_COLUMNS, type TierValues } from '../history/tier.ts';
import type { ChangeRow, FeedRow } from '../query/changes.ts';
import type { DiffRow } from '../query/diff.ts';
import { RUN_COLUMNS, type RunRow } from '../query/runs.ts';
import { VERSION_COLUMNS, type VersionRow } from '../query/snapshot.ts';
import type { DescribableChange } from '../report/describe-change.ts';
import { jsonValue, type RecordShape } from './stream.ts';

const SIDE_COLUMNS = TRACKED_COLUMNS.flatMap((column) => [`old_${column}`, `new_${column}`]);

/** The old_/new_ columns of a change or diff row, in the tier_changes view's order. */
export function flattenSides(before: TierValues | null, after: TierValues | null): Record<string, number | null> {
  const flat: Record<string, number | null> = {};
  for (const column of TRACKED_COLUMNS) {
    flat[`old_${column}`] = before === null ? null : before[column];
    flat[`new_${column}`] = after === null ? null : after[column];
  }
  return flat;
}

/** A change or diff row in the flat shape describe-change reads. */
export function describable(row: ChangeRow | DiffRow): DescribableChange {
  return {
    symbol: row.symbol,
    leverage: row.leverage,
    change: row.change,
    changed_columns: row.changed_columns,
    ...(flattenSides(row.before, row.after) as Pick<
      DescribableChange,
      `old_${(typeof TRACKED_COLUMNS)[number]}` | `new_${(typeof TRACKED_COLUMNS)[number]}`
    >),
  };
}

export const versionShape: RecordShape<VersionRow> = {
  json: (row) => row,
  csvColumns: VERSION_COLUMNS,
  csv: (row) => VERSION_COLUMNS.map((column) => row[column]),
};

/** A change of the feed; classification and baseline come last (appended to the 0.1.0 shape). */
export const changeShape: RecordShape<FeedRow> = {
  json: (row) => row,
  csvColumns: [
    'run_id',
    'observed_at',
    'account_id',
    'symbol',
    'leverage',
    'change',
    'changed_columns',
    ...SIDE_COLUMNS,
    'classification',
    'baseline',
  ],
  csv: (row) => {
    const flat = flattenSides(row.before, row.after);
    return [
      row.run_id,
      row.observed_at,
      row.account_id,
      row.symbol,
      row.leverage,
      row.change,
      JSON.stringify(row.changed_columns),
      ...SIDE_COLUMNS.map((column) => flat[column]),
      row.classification,
      row.baseline ? 1 : 0,
    ];
  },
};

export const diffShape: RecordShape<DiffRow> = {
  json: (row) => row,
  csvColumns: ['account_id', 'symbol', 'leverage', 'change', 'changed_columns', ...SIDE_COLUMNS],
  csv: (row) => {
    const flat = flattenSides(row.before, row.after);
    return [
      row.account_id,
      row.symbol,
      row.leverage,
      row.change,
      JSON.stringify(row.changed_columns),
      ...SIDE_COLUMNS.map((column) => flat[column]),
    ];
  },
};

export const runShape: RecordShape<RunRow> = {
  json: (row) => row,
  csvColumns: RUN_COLUMNS,
  csv: (row) => RUN_COLUMNS.map((column) => row[column]),
};

/** Rows of an arbitrary query, read in raw mode (arrays) with the statement's column names. */
export function queryShape(columns: readonly string[]): RecordShape<unknown[]> {
  return {
    json: (row) => Object.fromEntries(columns.map((column, index) => [column, jsonValue(row[index])])),
    csvColumns: columns,
    csv: (row) => row,
  };
}
