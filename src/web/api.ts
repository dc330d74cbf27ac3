/**
 * `/api/changes`, `/api/snapshot`, `/api/diff`, `/api/history/{SYMBOL}`, `/api/runs`: the JSON twins
 * of the pages. Each answer is written by the same function (output/source-answers.ts) and the same record
 * writer as the CLI's `--format json`, to the response instead of stdout, so the bodies are
 * byte-for-byte the CLI's output. `format=ndjson|csv` give the CLI's other machine formats.
 */
import type { ServerResponse } from 'node:http';
import type { QueryOptions } from '../output/answers.ts';
import {
  sourceChangesAnswer,
  sourceDiffAnswer,
  sourceHistoryAnswer,
  sourceRunsAnswer,
  sourceSnapshotAnswer,
} from '../output/source-answers.ts';
import type { RecordShape } from '../output/stream.ts';
import type { Rows } from '../output/table.ts';
import { writeRecords } from '../output/stream.ts';
import { optionText } from '../commands/options.ts';
import { TierwatchError } from '../errors.ts';
import type { HistorySource } from '../query/source.ts';
import { API_PARAMS, optionsFromQuery } from './params.ts';

const API_FORMATS = ['json', 'ndjson', 'csv'] as const;
type ApiFormat = (typeof API_FORMATS)[number];

const CONTENT_TYPES: Record<ApiFormat, string> = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

function formatOf(options: QueryOptions): ApiFormat {
  const value = options.format;
  delete options.format;
  if (value === undefined) return 'json';
  const text = optionText(value).trim().toLowerCase();
  if ((API_FORMATS as readonly string[]).includes(text)) return text as ApiFormat;
  throw new TierwatchError(
    'USAGE',
    `Expected \`format\` to be one of ${API_FORMATS.join(', ')}; got ${JSON.stringify(optionText(value))}.`,
  );
}

/** An answer's rows (read lazily on either backend) and how each is written. */
interface ApiRows {
  rows: Rows<unknown>;
  shape: RecordShape<unknown>;
}

/** The API endpoint names, for the router. */
export const API_ROUTES = ['changes', 'snapshot', 'diff', 'history', 'runs'] as const;

/**
 * The answer to `/api/{route}[/{symbol}]`, checked (USAGE and DB_EMPTY are thrown before anything
 * is written), and a function that writes it. Returns null for an unknown route.
 */
export async function apiAnswer(
  history: HistorySource,
  route: string,
  rest: string | null,
  search: URLSearchParams,
  now: Date,
): Promise<{ format: ApiFormat; answer: ApiRows } | null> {
  let answer: ApiRows;
  let format: ApiFormat;
  if (route === 'history') {
    if (rest === null || rest === '') {
      throw new TierwatchError('USAGE', "missing required argument 'symbol': /api/history/{SYMBOL}");
    }
    const options = optionsFromQuery(search, API_PARAMS.history);
    format = formatOf(options);
    answer = await sourceHistoryAnswer(history, rest, options);
  } else {
    if (rest !== null) return null;
    if (route === 'changes') {
      const options = optionsFromQuery(search, API_PARAMS.changes);
      format = formatOf(options);
      answer = await sourceChangesAnswer(history, options, now);
    } else if (route === 'snapshot') {
      const options = optionsFromQuery(search, API_PARAMS.snapshot);
      format = formatOf(options);
      answer = await sourceSnapshotAnswer(history, options, now);
    } else if (route === 'diff') {
      const options = optionsFromQuery(search, API_PARAMS.diff);
      format = formatOf(options);
      answer = await sourceDiffAnswer(history, { ...options, from: options.from, to: options.to }, now);
    } else if (route === 'runs') {
      const options = optionsFromQuery(search, API_PARAMS.runs);
      format = formatOf(options);
      answer = await sourceRunsAnswer(history, options);
    } else return null;
  }
  return { format, answer };
}

/** Writes an answer as the CLI writes it to stdout. */
export async function writeAnswer(
  response: ServerResponse,
  headers: Record<string, string>,
  format: ApiFormat,
  answer: ApiRows,
): Promise<void> {
  response.writeHead(200, { ...headers, 'content-type': CONTENT_TYPES[format] });
  await writeRecords(response, format, answer.rows, answer.shape);
  response.end();
}

/** The body of an API error: the code and the CLI's message. */
export function apiError(error: TierwatchError): string {
  return `${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`;
}
