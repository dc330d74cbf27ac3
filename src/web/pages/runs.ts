/** `/runs`: the run ledger (as `tierwatch runs`), failures with their error codes, and the gaps. */
import { runsTable } from '../../commands/runs.ts';
import { sourceRunsAnswer } from '../../output/source-answers.ts';
import { html } from '../html.ts';
import { tableHtml } from '../layout.ts';
import { API_PARAMS, optionsFromQuery } from '../params.ts';
import { checkbox, filterForm, guarded, textField, type PageResult, type View } from '../view.ts';

/** A page shows the last runs only, unless `last` asks for another number: a year holds 100,000. */
export const RUNS_PAGE_DEFAULT = 200;

export async function runsPage(view: View, search: URLSearchParams): Promise<PageResult> {
  const { status, body } = await guarded(async () => {
    const options = optionsFromQuery(search, API_PARAMS.runs);
    delete options.format;
    const answer = await sourceRunsAnswer(view.history, {
      ...options,
      last: options.last ?? String(RUNS_PAGE_DEFAULT),
    });
    const failures = answer.rows.filter((row) => row.status !== 'ok' && row.status !== 'running').length;
    const table = tableHtml(runsTable(answer.rows, !answer.failed), { caption: 'Runs' });
    return html`<p>${answer.rows.length} run(s) shown, ${failures} of them not successful${options.last === undefined ? html` (the last ${RUNS_PAGE_DEFAULT}; set “Last” for more)` : ''}.</p>${table.markup}
<p class="hint"><a href="${`/api/runs${search.size > 0 ? `?${search.toString()}` : ''}`}">These runs as JSON</a></p>`;
  });
  const form = filterForm(
    '/runs',
    [
      checkbox('failed', 'failed runs only', search.has('failed')),
      textField('last', 'Last', search.get('last') ?? undefined, String(RUNS_PAGE_DEFAULT)),
      textField('account', 'Account', search.getAll('account').join(',') || undefined, 'all'),
    ],
    'Filter the runs',
  );
  return { status, title: 'Runs', section: 'runs', body: html`${form}${body}` };
}
