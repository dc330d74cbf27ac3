/**
 * HTML built by a tagged template that escapes every interpolated value unless it is already Html:
 * a symbol such as `<img src=x onerror=alert(1)>` can only ever become text. Markup is written in
 * the templates themselves; nothing from the exchange or the query string reaches the page unescaped.
 */

/** Markup that is safe as it is (it was built by `html` or `raw` from trusted text). */
export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML text or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character]!);
}

/** Trusted markup (a constant of this program: never anything read from the history or a request). */
export function raw(text: string): Html {
  return new Html(text);
}

/** An interpolated value: Html as is, arrays item by item, null/undefined/false as nothing, the rest escaped. */
function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  if (typeof value === 'string') return escapeHtml(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  // Nothing else is interpolated today; an object shows as JSON, never as `[object Object]`.
  return escapeHtml(JSON.stringify(value) ?? '');
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0]!;
  for (let index = 0; index < values.length; index++) text += render(values[index]) + strings[index + 1]!;
  return new Html(text);
}

/** A path with a query string; empty and undefined values are left out, arrays repeat the key. */
export function href(path: string, params: Record<string, string | readonly string[] | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const item of typeof value === 'string' ? [value] : value) if (item !== '') search.append(key, item);
  }
  const query = search.toString();
  return query === '' ? path : `${path}?${query}`;
}

/** The path of a symbol's page: the symbol is one encoded path segment, whatever it holds. */
export function symbolPath(symbol: string): string {
  return `/symbol/${encodeURIComponent(symbol)}`;
}
