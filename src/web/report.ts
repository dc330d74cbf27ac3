/**
 * `tierwatch report`'s page: the overview and the ladders of chosen symbols as one self-contained
 * HTML file (the stylesheet inline, the charts as inline SVG, no script, no link to a server), to
 * attach to an email or a ticket and open with no network.
 */
import { html } from './html.ts';
import { page } from './layout.ts';
import { overviewBody } from './pages/overview.ts';
import { ladders } from './pages/symbol.ts';
import type { View } from './view.ts';

export interface ReportOptions {
  symbols: readonly string[];
  at?: string;
  compare?: string;
  account?: readonly string[];
}

export async function renderReport(view: View, options: ReportOptions): Promise<string> {
  const question = {
    ...(options.at === undefined ? {} : { at: options.at }),
    ...(options.compare === undefined ? {} : { compare: options.compare }),
    ...(options.account === undefined ? {} : { account: options.account }),
  };
  const sections = await Promise.all(
    options.symbols.map(
      async (symbol, index) =>
        html`<h2>Ladder of ${symbol}</h2>${await ladders(view, symbol, question, `report-${index}`)}`,
    ),
  );
  const body = html`${await overviewBody(view)}${sections.length === 0 ? '' : html`<h2>Ladders</h2>${sections}`}`;
  const lastSweep = (await view.history.bounds())?.last_observed_at ?? null;
  return page(
    {
      title: 'tierwatch report',
      section: 'none',
      source: view.source,
      lastSweep,
      generatedAt: view.now,
      standalone: true,
    },
    body,
  ).text;
}
