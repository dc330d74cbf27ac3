/**
 * `/`: last successful sweep per account and how long ago, the health verdict (as
 * `tierwatch health` gives it), the latest changes with their direction, and a strip of recent
 * runs (ok / failed / missing) so gaps in collection show.
 */
import { judgeHealth } from '../../collect/health.ts';
import { changesTable } from '../../commands/changes.ts';
import { sourceChangesAnswer } from '../../output/source-answers.ts';
import type { FeedRow } from '../../query/changes.ts';
import { missedBefore, type RunRow } from '../../query/runs.ts';
import { href, html, type Html } from '../html.ts';
import { tableHtml } from '../layout.ts';
import type { PageResult, View } from '../view.ts';

/** How many of the latest changes the overview lists, and over how many days before the last sweep. */
const LATEST_CHANGES = 20;
const LATEST_DAYS = 7;
const STRIP_RUNS = 120;
/** A long gap is drawn as this many "missing" cells at most (the count is in its label). */
const MAX_MISSING_CELLS = 8;

/** "3 min ago", "2 h ago", "5 d ago". */
export function ago(at: string, now: Date): string {
  const seconds = Math.round((now.getTime() - Date.parse(at)) / 1000);
  if (seconds < 0) return `${-seconds} s in the future`;
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} d ago`;
}

/**
 * The accounts to judge: the configured ones, else those with a successful run (read from the
 * partial index on successful runs, not a scan of the ledger) and those of the recent runs.
 */
async function ledgerAccounts(view: View, recent: readonly RunRow[]): Promise<string[]> {
  if (view.accounts !== null) return [...view.accounts];
  const ok = await view.history.okAccounts();
  return [...new Set([...ok, ...recent.map((run) => run.account_id)])].sort();
}

/**
 * The last `LATEST_CHANGES` changes in [since, end), oldest first. Read backwards in slices that
 * grow fourfold from an hour: a busy week holds tens of thousands of changes, and only the newest
 * few are wanted.
 */
export async function latestChanges(view: View, since: string, endMs: number): Promise<FeedRow[]> {
  const sinceMs = Date.parse(since);
  let latest: FeedRow[] = [];
  let end = endMs;
  for (let span = 3_600_000; latest.length < LATEST_CHANGES && end > sinceMs; span *= 4) {
    const start = Math.max(sinceMs, end - span);
    const answer = await sourceChangesAnswer(
      view.history,
      { since: new Date(start).toISOString(), until: new Date(end).toISOString() },
      view.now,
    );
    const slice: FeedRow[] = [];
    for await (const row of answer.rows) slice.push(row);
    latest = [...slice, ...latest];
    end = start;
  }
  return latest.slice(-LATEST_CHANGES);
}

function runStrip(view: View, runs: readonly RunRow[]): Html {
  const missed = missedBefore(runs);
  const cells: Html[] = [];
  for (const run of runs) {
    const gap = missed.get(run.run_id);
    if (gap !== undefined) {
      for (let index = 0; index < Math.min(gap, MAX_MISSING_CELLS); index++) {
        cells.push(
          html`<li class="missing"><span class="sr">about ${gap} run(s) of ${run.account_id} missed</span></li>`,
        );
      }
    }
    const what = `run ${run.run_id} (${run.account_id}) ${run.status}${run.error_code ? ` ${run.error_code}` : ''} at ${run.started_at}`;
    cells.push(html`<li class="${run.status}" title="${what}"><span class="sr">${what}</span></li>`);
  }
  return html`<ol class="strip" aria-label="The last ${runs.length} runs, oldest first">${cells}</ol>
<p class="legend"><span><span class="swatch ok"></span>ok</span><span><span class="swatch failed"></span>failed, aborted or abandoned</span><span><span class="swatch missing"></span>missed (a gap in the schedule)</span></p>`;
}

export async function overviewBody(view: View): Promise<Html> {
  const bounds = await view.history.bounds();
  const runs = await view.history.runs({ last: STRIP_RUNS });
  const accounts = await ledgerAccounts(view, runs);
  const health = await view.history.lastSuccesses(accounts);
  const verdict = accounts.length === 0 ? null : judgeHealth(health, view.healthMaxAgeMs, view.now);
  const verdictHtml =
    verdict === null
      ? html`<p class="verdict unhealthy">No run yet: nothing has been collected.</p>`
      : verdict.healthy
        ? html`<p class="verdict healthy"><strong>healthy</strong>: ${verdict.summary}</p>`
        : html`<p class="verdict unhealthy"><strong>unhealthy</strong>: ${verdict.reason}</p>`;
  const sweeps = html`<div class="table-wrap"><table><caption class="sr">Last successful sweep per account</caption><thead><tr><th scope="col">account</th><th scope="col">last successful sweep</th><th scope="col">how long ago</th></tr></thead><tbody>${health.map(
    (account) =>
      html`<tr><td>${account.accountId}</td><td>${account.lastSuccessAt ?? 'never'}</td><td>${account.lastSuccessAt === null ? '–' : ago(account.lastSuccessAt, view.now)}</td></tr>`,
  )}</tbody></table></div>`;
  const since =
    bounds === null ? '' : new Date(Date.parse(bounds.last_observed_at) - LATEST_DAYS * 86_400_000).toISOString();
  const latest = bounds === null ? [] : await latestChanges(view, since, Date.parse(bounds.last_observed_at) + 1);
  const changes = tableHtml(changesTable(latest.reverse()), {
    standalone: view.standalone,
    caption: 'Latest changes, newest first',
  }).markup;
  const more = view.standalone
    ? ''
    : html`<p><a href="${href('/changes', { since })}">All changes of those ${LATEST_DAYS} days</a></p>`;
  const runsLink = view.standalone
    ? ''
    : html`<p><a href="/runs">The run ledger</a> · <a href="${href('/runs', { failed: 'true' })}">failed runs only</a></p>`;
  return html`<h2>Health</h2>${verdictHtml}${sweeps}
<h2>Latest changes</h2><p class="hint">The last ${LATEST_CHANGES} changes in the ${LATEST_DAYS} days before the last sweep, newest first (without each account's first sweep).</p>${changes}${more}
<h2>Recent runs</h2>${runStrip(view, runs)}${runsLink}`;
}

export async function overviewPage(view: View): Promise<PageResult> {
  return { status: 200, title: 'Overview', section: 'overview', body: await overviewBody(view) };
}
