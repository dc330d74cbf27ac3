/**
 * The frame every page shares (header, navigation, footer), and CLI tables rendered as HTML: the
 * pages show the same columns and cells as the CLI's table format (commands/*Table), so the two
 * never disagree about what a change "is".
 */
import type { Table } from '../output/table.ts';
import { html, raw, symbolPath, type Html } from './html.ts';
import { STYLE } from './style.ts';

export type Section = 'overview' | 'changes' | 'diff' | 'runs' | 'symbol' | 'none';

export interface Frame {
  title: string;
  section: Section;
  /** The database shown (a path), for the footer. */
  source: string;
  /** The last successful sweep, for the footer; null when none. */
  lastSweep: string | null;
  /** A file (`tierwatch report`): the stylesheet inline, no navigation to a server. */
  standalone?: boolean;
  generatedAt: Date;
}

const SECTIONS: ReadonlyArray<[Section, string, string]> = [
  ['overview', '/', 'Overview'],
  ['changes', '/changes', 'Changes'],
  ['diff', '/diff', 'Diff'],
  ['runs', '/runs', 'Runs'],
];

export function page(frame: Frame, body: Html): Html {
  const head = frame.standalone
    ? html`<style>${raw(STYLE)}</style>`
    : html`<link rel="stylesheet" href="/assets/style.css"><link rel="icon" href="/assets/icon.svg" type="image/svg+xml">`;
  const nav = frame.standalone
    ? ''
    : html`<nav aria-label="Sections"><ul>${SECTIONS.map(
        ([section, path, label]) =>
          html`<li><a href="${path}"${frame.section === section ? raw(' aria-current="page"') : ''}>${label}</a></li>`,
      )}</ul></nav>
<form class="symbol-jump" action="/symbol" method="get" role="search"><label for="jump-symbol">Go to symbol</label> <input type="text" id="jump-symbol" name="symbol" placeholder="META-USD" required> <button type="submit">Show ladder</button></form>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · tierwatch</title>
${head}
</head>
<body>
<header><span class="brand">tierwatch</span>${nav}</header>
<main id="main">
<h1>${frame.title}</h1>
${body}
</main>
<footer>Read-only view of ${frame.source}. Last successful sweep: ${frame.lastSweep ?? 'none yet'}. Generated ${frame.generatedAt.toISOString()}.</footer>
</body>
</html>
`;
}

/** Columns whose cells are right-aligned numbers. */
function cellClass(title: string, value: string): string {
  if (title === 'direction') return `dir dir-${value}`;
  if (
    [
      'leverage',
      'initial_margin',
      'maintenance_margin',
      'max_notional',
      'run_id',
      'pages',
      'tiers',
      'changes',
    ].includes(title)
  ) {
    return 'num';
  }
  return '';
}

const ARROWS: Record<string, string> = { tightening: '▲ ', loosening: '▼ ', mixed: '◆ ' };

export interface TableOptions {
  /** Links a cell (return undefined for text); symbols link to their page by default (not in a file). */
  link?: (title: string, value: string, row: readonly string[]) => string | undefined;
  standalone?: boolean;
  /** At most this many rows (the rest are not read). */
  limit?: number;
  caption?: string;
}

/** A CLI table as an HTML table; every cell escaped. Returns the markup and how many rows it holds. */
export function tableHtml(source: Table, options: TableOptions = {}): { markup: Html; rows: number } {
  const titles = source.columns.map((column) => column.title);
  const body: Html[] = [];
  for (const row of source.rows) {
    if (options.limit !== undefined && body.length >= options.limit) break;
    const cells = row.map((value, index) => {
      const title = titles[index]!;
      const target = options.standalone
        ? undefined
        : (options.link?.(title, value, row) ?? (title === 'symbol' ? symbolPath(value) : undefined));
      const text = title === 'direction' ? `${ARROWS[value] ?? ''}${value}` : value;
      const content = target === undefined ? html`${text}` : html`<a href="${target}">${text}</a>`;
      const cls = cellClass(title, value);
      return cls === '' ? html`<td>${content}</td>` : html`<td class="${cls}">${content}</td>`;
    });
    body.push(html`<tr>${cells}</tr>`);
  }
  if (body.length === 0) return { markup: html`<p class="empty">${source.empty}</p>`, rows: 0 };
  const caption = options.caption === undefined ? '' : html`<caption class="sr">${options.caption}</caption>`;
  const markup = html`<div class="table-wrap"><table>${caption}<thead><tr>${titles.map((title) => html`<th scope="col">${title}</th>`)}</tr></thead><tbody>${body}</tbody></table></div>`;
  return { markup, rows: body.length };
}
