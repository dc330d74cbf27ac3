/**
 * `/symbol/{SYMBOL}`: the ladder as a step chart at a date (`at`, default the last sweep), with a
 * second date (`compare`) overlaid; below it the ladder's versions over time (as `tierwatch
 * history`, each valid_from a link that moves the chart there) and the symbol's changes.
 */
import { changesTable } from '../../commands/changes.ts';
import { historyTable } from '../../commands/history.ts';
import { snapshotTable } from '../../commands/snapshot.ts';
import type { QueryOptions } from '../../output/answers.ts';
import { sourceChangesAnswer, sourceHistoryAnswer, sourceSnapshotAnswer } from '../../output/source-answers.ts';
import type { FeedRow } from '../../query/changes.ts';
import type { VersionRow } from '../../query/snapshot.ts';
import { href, html, symbolPath, type Html } from '../html.ts';
import { tableHtml } from '../layout.ts';
import { ladderChart, type LadderSeries } from '../ladder-chart.ts';
import { optionsFromQuery } from '../params.ts';
import { filterForm, guarded, textField, type PageResult, type View } from '../view.ts';

export const SYMBOL_PARAMS = { at: 'value', compare: 'value', account: 'list' } as const;
/** The symbol's changes listed under the chart (the newest); the changes page has them all. */
const SYMBOL_CHANGES = 100;
/** The symbol's versions listed (the latest); a year of a busy symbol holds many more. */
const SYMBOL_VERSIONS = 100;

/** Rows grouped by account and symbol (a pattern can match several symbols), in order of appearance. */
function byLadder(rows: readonly VersionRow[]): Map<string, VersionRow[]> {
  const groups = new Map<string, VersionRow[]>();
  for (const row of rows) {
    const key = `${row.account_id}\u0000${row.symbol}`;
    const group = groups.get(key) ?? [];
    group.push(row);
    groups.set(key, group);
  }
  return groups;
}

/** The ladders of `symbol` at `options.at`, and at `options.compare` overlaid when given. */
export async function ladders(view: View, symbol: string, options: QueryOptions, idPrefix = 'ladder'): Promise<Html> {
  const filters = { ...(options.account === undefined ? {} : { account: options.account }), symbol: [symbol] };
  const lastSweep = (await view.history.bounds())?.last_observed_at;
  const at = await sourceSnapshotAnswer(view.history, { ...filters, at: options.at ?? lastSweep }, view.now);
  const compare =
    options.compare === undefined
      ? null
      : await sourceSnapshotAnswer(view.history, { ...filters, at: options.compare }, view.now);
  if (at.rows.length === 0 && (compare === null || compare.rows.length === 0)) {
    return html`<p class="empty">No tiers of ${symbol} at ${at.at}.</p>${at.note === '' ? '' : html`<p class="hint">${at.note}</p>`}`;
  }
  const atGroups = byLadder(at.rows);
  const compareGroups = compare === null ? new Map<string, VersionRow[]>() : byLadder(compare.rows);
  const keys = [...new Set([...atGroups.keys(), ...compareGroups.keys()])];
  const sections = keys.map(async (key, index) => {
    const [account, name] = key.split('\u0000') as [string, string];
    const series: LadderSeries[] = [{ role: 'at', label: `at ${at.at}`, steps: atGroups.get(key) ?? [] }];
    if (compare !== null) {
      series.push({ role: 'compare', label: `at ${compare.at}`, steps: compareGroups.get(key) ?? [] });
    }
    const title = `${name} (${account})`;
    const table = tableHtml(snapshotTable(atGroups.get(key) ?? []), {
      standalone: view.standalone,
      caption: `The tiers of ${title} at ${at.at}`,
    });
    return html`<section class="ladder-section" aria-label="${title}"><h2>${title}</h2>${await ladderChart(series, `Tier ladder of ${title}`, `${idPrefix}-${index}`)}
<details><summary>The tiers at ${at.at} as a table</summary>${table.markup}</details></section>`;
  });
  return html`${await Promise.all(sections)}`;
}

export async function symbolPage(view: View, symbol: string, search: URLSearchParams): Promise<PageResult> {
  const { status, body } = await guarded(async () => {
    const options = optionsFromQuery(search, SYMBOL_PARAMS);
    const chart = await ladders(view, symbol, options);
    const history = await sourceHistoryAnswer(view.history, symbol, options);
    // The notes read every version; the page shows the latest ones (the JSON twin has them all).
    const versions = historyTable(history.rows, symbol);
    const shown = [...versions.rows].slice(-SYMBOL_VERSIONS);
    const timeline = tableHtml(
      { ...versions, rows: shown },
      {
        caption: `Versions of ${symbol}`,
        // Each version's start is a link that draws the ladder at that instant, compared with the current one.
        link: (title, value) =>
          title === 'valid_from'
            ? href(symbolPath(symbol), {
                at: value,
                compare: (options.at as string | undefined) ?? undefined,
                account: options.account as string[] | undefined,
              })
            : undefined,
      },
    );
    const latest: FeedRow[] = [];
    const changes = await sourceChangesAnswer(
      view.history,
      { symbol: [symbol], ...(options.account ? { account: options.account } : {}) },
      view.now,
    );
    for await (const row of changes.rows) {
      latest.push(row);
      if (latest.length > SYMBOL_CHANGES) latest.shift();
    }
    const changesShown = tableHtml(changesTable(latest), { caption: `Changes of ${symbol}` });
    return html`${chart}
<h2>Versions over time</h2><p class="hint">Each version's valid_from draws the ladder at that instant.${history.rows.length > SYMBOL_VERSIONS ? ` The last ${SYMBOL_VERSIONS} of ${history.rows.length} are shown.` : ''}</p>${timeline.markup}
<h2>Changes</h2>${latest.length === SYMBOL_CHANGES ? html`<p class="hint">The last ${SYMBOL_CHANGES}; <a href="${href('/changes', { symbol })}">all of them</a>.</p>` : ''}${changesShown.markup}
<p class="hint"><a href="${href(`/api/history/${encodeURIComponent(symbol)}`, { account: options.account as string[] | undefined })}">This history as JSON</a></p>`;
  });
  // The form is built from the raw query, outside `guarded`: a bad value stays in the box to be corrected.
  const form = filterForm(
    symbolPath(symbol),
    [
      textField('at', 'At', search.get('at') ?? undefined, 'last sweep'),
      textField('compare', 'Compare with', search.get('compare') ?? undefined, 'e.g. 7d or run:12'),
      textField('account', 'Account', search.getAll('account').join(',') || undefined, 'all'),
    ],
    `Ladder of ${symbol}`,
  );
  return { status, title: symbol, section: 'symbol', body: html`${form}${body}` };
}
