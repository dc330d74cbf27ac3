/** `/diff?from=…&to=…`: what differs between two points, net of what happened in between (as `tierwatch diff`). */
import { diffTable } from '../../commands/diff.ts';
import { sourceDiffAnswer } from '../../output/source-answers.ts';
import { html } from '../html.ts';
import { tableHtml } from '../layout.ts';
import { API_PARAMS, optionsFromQuery } from '../params.ts';
import { filterForm, guarded, textField, type PageResult, type View } from '../view.ts';

/** Rows shown on the page (a page stays under its 300 KB budget); the JSON twin has them all. */
export const DIFF_PAGE_ROWS = 250;

export async function diffPage(view: View, search: URLSearchParams): Promise<PageResult> {
  const { status, body } = await guarded(async () => {
    const options = optionsFromQuery(search, API_PARAMS.diff);
    if (options.from === undefined) {
      return html`<p class="hint">Give the earlier point in “From” (and the later one in “To”, default now).</p>`;
    }
    const answer = await sourceDiffAnswer(view.history, { ...options, from: options.from, to: options.to }, view.now);
    const table = tableHtml(diffTable(answer.rows), {
      caption: `Differences from ${answer.from} to ${answer.to}`,
      limit: DIFF_PAGE_ROWS,
    });
    const cut =
      answer.rows.length > DIFF_PAGE_ROWS
        ? html`<p class="hint">The first ${DIFF_PAGE_ROWS} are shown; narrow it with Account or Symbol, or take them all as JSON (below).</p>`
        : '';
    return html`<p>From <strong>${answer.from}</strong> to <strong>${answer.to}</strong>: ${answer.rows.length} difference(s).</p>${cut}${table.markup}${answer.note === '' ? '' : html`<p class="hint">${answer.note}</p>`}
<p class="hint"><a href="${`/api/diff?${search.toString()}`}">This diff as JSON</a></p>`;
  });
  const form = filterForm(
    '/diff',
    [
      textField('from', 'From', search.get('from') ?? undefined, 'e.g. 7d or 2026-10-01'),
      textField('to', 'To', search.get('to') ?? undefined, 'now'),
      textField('account', 'Account', search.getAll('account').join(',') || undefined, 'all'),
      textField('symbol', 'Symbol', search.getAll('symbol').join(',') || undefined, 'all'),
    ],
    'Choose the two points',
  );
  return { status, title: 'Diff', section: 'diff', body: html`${form}${body}` };
}
