/**
 * What a page is rendered from, what it gives back, and the form controls every page's filters
 * use. Forms are plain GET forms: the filters live in the URL, so a view can be bookmarked, and
 * every control has a label.
 */
import { optionText } from '../commands/options.ts';
import { isTierwatchError, type TierwatchError } from '../errors.ts';
import type { HistorySource } from '../query/source.ts';
import { TIME_FORMS } from '../query/time.ts';
import { html, type Html } from './html.ts';
import type { Section } from './layout.ts';

export interface View {
  /** The history, read for this request only (one consistent snapshot on Postgres). */
  history: HistorySource;
  now: Date;
  /** The database shown, for the footer. */
  source: string;
  /** The oldest acceptable last success, for the health verdict. */
  healthMaxAgeMs: number;
  /** The accounts to judge; null = every account of the ledger. */
  accounts: readonly string[] | null;
  /** Rendering into a file (`tierwatch report`): no links to a server. */
  standalone: boolean;
}

export interface PageResult {
  status: number;
  title: string;
  section: Section;
  body: Html;
}

/** Where to send the browser instead of a page (the symbol box's GET form). */
export interface Redirect {
  redirect: string;
}

/** The HTTP status of a TierwatchError met while answering a request. */
export function statusFor(error: TierwatchError): number {
  if (error.code === 'USAGE' || error.code === 'CONFIG_INVALID') return 400;
  if (error.code === 'DB_EMPTY') return 404;
  return 500;
}

/**
 * Runs `content`; a question the history cannot answer (bad parameter, nothing known) becomes a
 * message in the page, under its form, with the status the API would give.
 */
export async function guarded(content: () => Promise<Html>): Promise<{ status: number; body: Html }> {
  try {
    return { status: 200, body: await content() };
  } catch (error) {
    return shownFailure(error);
  }
}

function shownFailure(error: unknown): { status: number; body: Html } {
  if (!isTierwatchError(error) || statusFor(error) === 500) throw error;
  return { status: statusFor(error), body: html`<p class="error" role="alert">${error.message}</p>` };
}

export function textField(name: string, label: string, value: unknown, placeholder = ''): Html {
  const text = Array.isArray(value) ? value.join(',') : value === undefined ? '' : optionText(value);
  return html`<label for="f-${name}">${label}<input type="text" id="f-${name}" name="${name}" value="${text}" placeholder="${placeholder}"></label>`;
}

export function checkbox(name: string, label: string, checked: boolean, value = 'true'): Html {
  const id = `f-${name}-${value}`;
  return html`<label for="${id}"><input type="checkbox" id="${id}" name="${name}" value="${value}"${checked ? html` checked` : ''}>${label}</label>`;
}

export function checkboxGroup(legend: string, name: string, choices: readonly string[], selected: unknown): Html {
  const chosen = new Set(Array.isArray(selected) ? (selected as string[]) : []);
  return html`<fieldset><legend>${legend}</legend>${choices.map((choice) => checkbox(name, choice, chosen.has(choice), choice))}</fieldset>`;
}

export function filterForm(action: string, controls: Html[], label: string): Html {
  return html`<form class="filters" action="${action}" method="get" aria-label="${label}">${controls}<button type="submit">Apply</button></form>
<p class="hint">Times: ${TIME_FORMS}. Patterns: <code>*</code> is a wildcard; commas separate several.</p>`;
}
