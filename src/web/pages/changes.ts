/** `/changes`: the change feed with the CLI's filters (as `tierwatch changes`), a page at a time. */
import { baselineNote, changesTable } from '../../commands/changes.ts';
import type { QueryOptions } from '../../output/answers.ts';
import { sourceBaselineLeftOut, sourceChangesWindow, sourceNoteForEmpty } from '../../output/source-answers.ts';
import { CLASSIFICATIONS, type FeedRow } from '../../query/changes.ts';
import { CHANGE_KINDS } from '../../store/change-kinds.ts';
import { integerOption } from '../../commands/options.ts';
import { html } from '../html.ts';
import { tableHtml } from '../layout.ts';
import { API_PARAMS, optionsFromQuery } from '../params.ts';
import { checkbox, checkboxGroup, filterForm, guarded, textField, type PageResult, type View } from '../view.ts';

export const CHANGES_PAGE_SIZE = 100;
const FIRST_SLICE_MS = 86_400_000;
const MAX_SLICE_MS = 32 * 86_400_000;
const PAGE_PARAMS = { ...API_PARAMS.changes, page: 'value' } as const;

/** The query string with `page` replaced. */
function withPage(search: URLSearchParams, page: number): string {
  const next = new URLSearchParams(search);
  next.delete('page');
  if (page > 1) next.set('page', String(page));
  const query = next.toString();
  return query === '' ? '/changes' : `/changes?${query}`;
}

/**
 * The rows of one page of the feed, read in time slices: a slice is [start, end), ordered as the
 * CLI orders the whole feed, so slices in turn give exactly the CLI's order. One query over the
 * whole window would sort all of its changes before the first row (a year: a second); slices
 * start at a day and double while they come back short, so a page costs a few small sorts.
 */
export async function pageOfChanges(
  view: View,
  options: QueryOptions,
  page: number,
): Promise<{ rows: FeedRow[]; more: boolean; answer: Awaited<ReturnType<typeof sourceChangesWindow>> }> {
  const answer = await sourceChangesWindow(view.history, options, view.now);
  const bounds = await view.history.bounds();
  const rows: FeedRow[] = [];
  if (bounds === null) return { rows, more: false, answer };
  const skip = (page - 1) * CHANGES_PAGE_SIZE;
  const endMs = Math.min(
    answer.window.until === null ? Infinity : Date.parse(String(answer.window.until)),
    Date.parse(bounds.last_observed_at) + 1,
  );
  let startMs = Math.max(
    answer.window.since === null ? -Infinity : Date.parse(String(answer.window.since)),
    Date.parse(bounds.first_observed_at),
  );
  let sliceMs = FIRST_SLICE_MS;
  let seen = 0;
  while (startMs < endMs) {
    const sliceEnd = Math.min(endMs, startMs + sliceMs);
    const window = { since: new Date(startMs).toISOString(), until: new Date(sliceEnd).toISOString() };
    // Leaving the loop early closes the statement (SQLite) or the cursor (Postgres).
    for await (const row of await view.history.changes(window, answer.filters, answer.feed)) {
      if (seen++ < skip) continue;
      if (rows.length === CHANGES_PAGE_SIZE) return { rows, more: true, answer };
      rows.push(row);
    }
    startMs = sliceEnd;
    sliceMs = Math.min(sliceMs * 2, MAX_SLICE_MS);
  }
  return { rows, more: false, answer };
}

export async function changesPage(view: View, search: URLSearchParams): Promise<PageResult> {
  const { status, body } = await guarded(async () => {
    const options = optionsFromQuery(search, PAGE_PARAMS);
    delete options.format;
    const page = integerOption(options.page, 'page', 1, 1_000_000) ?? 1;
    delete options.page;
    const { rows, more, answer } = await pageOfChanges(view, options, page);
    const skip = (page - 1) * CHANGES_PAGE_SIZE;
    const table = tableHtml(changesTable(rows), { caption: 'Changes' });
    const notes =
      rows.length === 0 && page === 1
        ? `${baselineNote(await sourceBaselineLeftOut(view.history, answer))}${await sourceNoteForEmpty(view.history, answer.filters)}`
        : '';
    const pager = html`<nav class="pager" aria-label="Pages">${page > 1 ? html`<a href="${withPage(search, page - 1)}" rel="prev">← Previous ${CHANGES_PAGE_SIZE}</a>` : ''}<span>Page ${page}: changes ${rows.length === 0 ? 0 : skip + 1}–${skip + rows.length}</span>${more ? html`<a href="${withPage(search, page + 1)}" rel="next">Next ${CHANGES_PAGE_SIZE} →</a>` : ''}</nav>`;
    const api = new URLSearchParams(search);
    api.delete('page');
    return html`${pager}${table.markup}${notes === '' ? '' : html`<p class="hint">${notes}</p>`}${pager}
<p class="hint"><a href="${`/api/changes${api.size > 0 ? `?${api.toString()}` : ''}`}">These changes as JSON</a> (every page at once, as <code>tierwatch changes --format json</code>).</p>`;
  });
  const form = filterForm(
    '/changes',
    [
      textField('since', 'Since', search.get('since') ?? undefined, 'the beginning'),
      textField('until', 'Until', search.get('until') ?? undefined, 'now'),
      textField('account', 'Account', search.getAll('account').join(',') || undefined, 'all'),
      textField('symbol', 'Symbol', search.getAll('symbol').join(',') || undefined, 'all, or e.g. *-USD'),
      checkboxGroup('Direction', 'only', CLASSIFICATIONS, search.getAll('only')),
      checkboxGroup('Kind', 'change', CHANGE_KINDS, search.getAll('change')),
      checkbox('include-baseline', 'include each first sweep', search.has('include-baseline')),
    ],
    'Filter the changes',
  );
  return { status, title: 'Changes', section: 'changes', body: html`${form}${body}` };
}
