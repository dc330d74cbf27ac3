/**
 * A tier ladder as an SVG step chart: notional on x, margin (a fraction of notional) on y, one
 * horizontal step per leverage: from the notional the previous (higher) leverage stops at, up to
 * this leverage's max_notional, at its initial margin (solid) and maintenance margin (dashed). A
 * second date is drawn over it in another colour.
 *
 * Observable Plot draws it on the server, into linkedom's DOM, and the page receives the SVG markup:
 * the page then runs no script at all (the Content-Security-Policy forbids every script), weighs a
 * few kilobytes, works without a network, and `tierwatch report` embeds the same markup in a file.
 * Plot writes every label with the DOM's text and attribute setters and linkedom escapes them when
 * it serialises, so a hostile symbol or leverage stays text. Both libraries are imported on the
 * first chart only: the CLI and a daemon without the view never load them.
 */
import { html, raw, type Html } from './html.ts';

export interface LadderStep {
  leverage: string;
  initial_margin: number;
  maintenance_margin: number;
  max_notional: number;
}

export interface LadderSeries {
  /** 'at' is the main date; 'compare' the overlaid one. */
  role: 'at' | 'compare';
  /** What the series shows, e.g. "at 2026-11-30T12:00:00.000Z". */
  label: string;
  steps: readonly LadderStep[];
}

/** The series' colours, drawn by Plot; the stylesheet's --at and --compare (the legend's swatches) are these. */
export const SERIES_COLOURS = { at: '#0969da', compare: '#bc4c00' } as const;

const SVG_NS = 'http://www.w3.org/2000/svg';
const KINDS = ['initial', 'maintenance'] as const;
type Kind = (typeof KINDS)[number];

/** Steps in ladder order: the smallest notional cap (highest leverage) first. */
export function ladderOrder(steps: readonly LadderStep[]): LadderStep[] {
  return [...steps].sort((a, b) => a.max_notional - b.max_notional || Number(b.leverage) - Number(a.leverage));
}

/** A notional as 150k, 1.2M. */
export function compactNumber(value: number): string {
  const abs = Math.abs(value);
  const trim = (text: string) => text.replace(/\.0+$|(\.\d*?)0+$/, '$1');
  if (abs >= 1e9) return `${trim((value / 1e9).toFixed(2))}B`;
  if (abs >= 1e6) return `${trim((value / 1e6).toFixed(2))}M`;
  if (abs >= 1e3) return `${trim((value / 1e3).toFixed(1))}k`;
  return trim(value.toFixed(2));
}

/** A margin fraction as a percentage. */
export function percent(value: number): string {
  const text = (value * 100).toFixed(value * 100 >= 10 ? 1 : 2).replace(/\.?0+$/, '');
  return `${text}%`;
}

/** One leverage's step: from the previous cap up to its own. */
interface Segment {
  leverage: string;
  from: number;
  to: number;
  initial: number;
  maintenance: number;
}

/** Where the line climbs from one leverage's margin to the next one's. */
interface Riser {
  at: number;
  below: number;
  above: number;
}

function segmentsOf(steps: readonly LadderStep[]): Segment[] {
  let previous = 0;
  return ladderOrder(steps).map((step) => {
    const from = previous;
    previous = step.max_notional;
    const { leverage, max_notional: to, initial_margin: initial, maintenance_margin: maintenance } = step;
    return { leverage, from, to, initial, maintenance };
  });
}

function risersOf(segments: readonly Segment[], kind: Kind): Riser[] {
  return segments.slice(1).map((segment, index) => ({
    at: segment.from,
    below: segments[index]![kind],
    above: segment[kind],
  }));
}

/** The little of the DOM used here (the project compiles without TypeScript's DOM library). */
interface DomElement {
  textContent: string | null;
  readonly outerHTML: string;
  setAttribute(name: string, value: string): void;
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): Iterable<DomElement>;
  prepend(...nodes: DomElement[]): void;
  remove(): void;
}
interface DomDocument {
  createElementNS(namespace: string, name: string): DomElement;
}

interface ChartLibrary {
  Plot: typeof import('@observablehq/plot');
  document: DomDocument;
}

let library: Promise<ChartLibrary> | undefined;

/** Plot and a server-side DOM, imported once, on the first chart (about 0.4 s and 30 MB). */
function chartLibrary(): Promise<ChartLibrary> {
  library ??= (async () => {
    const [Plot, { DOMParser }] = await Promise.all([import('@observablehq/plot'), import('linkedom')]);
    // An SVG (XML) document: linkedom then escapes &, < and > in attribute values too, not only quotes.
    const document = new DOMParser().parseFromString(`<svg xmlns="${SVG_NS}"></svg>`, 'image/svg+xml');
    return { Plot, document: document as unknown as DomDocument };
  })();
  return library;
}

/** One ladder chart; `id` makes the title/description ids unique on a page with several charts. */
export async function ladderChart(series: readonly LadderSeries[], title: string, id: string): Promise<Html> {
  const { Plot, document } = await chartLibrary();
  const drawn = series.map((one) => ({ ...one, segments: segmentsOf(one.steps) }));
  const all = drawn.flatMap((one) => one.segments);
  const marks = drawn.flatMap(({ role, segments }) => {
    const stroke = SERIES_COLOURS[role];
    const lines = KINDS.flatMap((kind) => {
      const dashed = kind === 'maintenance' ? { strokeDasharray: '5 4' } : {};
      return [
        Plot.ruleX(risersOf(segments, kind), {
          x: 'at',
          y1: 'below',
          y2: 'above',
          stroke,
          strokeWidth: 1,
          className: `riser ${kind}`,
          ...dashed,
        }),
        Plot.ruleY(segments, {
          x1: 'from',
          x2: 'to',
          y: kind,
          stroke,
          strokeWidth: role === 'at' ? 2.5 : 2,
          title: (segment: Segment) =>
            `${segment.leverage}×: ${kind} margin ${percent(segment[kind])} up to ${compactNumber(segment.to)}`,
          className: `series series-${role}`,
          ...dashed,
        }),
      ];
    });
    const labels =
      role === 'at'
        ? [
            Plot.text(segments, {
              x: (segment: Segment) => (segment.from + segment.to) / 2,
              y: 'initial',
              text: (segment: Segment) => `${segment.leverage}×`,
              dy: -7,
              fill: stroke,
              fontWeight: 600,
              className: 'step-label',
            }),
          ]
        : [];
    return [...lines, ...labels];
  });
  const svg = Plot.plot({
    document,
    width: 720,
    height: 340,
    marginLeft: 58,
    marginRight: 20,
    marginTop: 20,
    marginBottom: 44,
    className: 'ladder',
    // Positions in whole pixels (`round`): shorter markup than Plot's 17-digit coordinates.
    x: {
      domain: [0, Math.max(0, ...all.map((segment) => segment.to))],
      nice: true,
      round: true,
      ticks: 5,
      tickFormat: compactNumber,
      label: 'notional (up to max_notional)',
      labelAnchor: 'center',
      labelArrow: 'none',
      labelOffset: 36,
    },
    y: {
      domain: [0, Math.max(0, ...all.map((segment) => Math.max(segment.initial, segment.maintenance)))],
      nice: true,
      round: true,
      ticks: 4,
      grid: true,
      tickFormat: percent,
      label: 'margin (share of notional)',
      labelAnchor: 'center',
      labelArrow: 'none',
      labelOffset: 48,
    },
    marks: [Plot.ruleY([0]), Plot.ruleX([0]), ...marks],
  }) as unknown as DomElement;
  finish(svg, document, drawn, title, id);
  return html`${raw(svg.outerHTML)}
    <p class="legend">
      ${series.map((one) => html`<span><span class="swatch ${one.role}"></span>${one.label} (solid: initial margin, dashed: maintenance margin)</span>`)}
    </p>`;
}

/**
 * What Plot does not write: the step elements' hooks (class and data-leverage, which the browser
 * test reads), the chart's title and description for assistive technology, and no <style> element
 * (the stylesheet has its rules: the Content-Security-Policy refuses inline styles).
 */
function finish(
  svg: DomElement,
  document: DomDocument,
  drawn: ReadonlyArray<{ role: LadderSeries['role']; label: string; segments: Segment[] }>,
  title: string,
  id: string,
): void {
  svg.querySelector('style')?.remove();
  for (const one of drawn) {
    // One group per kind, in the order the marks were given (initial, then maintenance).
    const groups = [...svg.querySelectorAll(`g.series-${one.role}`)];
    groups.forEach((group, index) => {
      const kind = KINDS[index]!;
      group.setAttribute('data-steps', String(one.segments.length));
      [...group.querySelectorAll('line')].forEach((line, position) => {
        // d3 keeps each element's datum on it: the index of its segment.
        const datum = (line as { __data__?: unknown }).__data__;
        const segment = one.segments[typeof datum === 'number' ? datum : position]!;
        line.setAttribute('class', `step ${kind}`);
        line.setAttribute('data-leverage', segment.leverage);
      });
    });
  }
  const titleElement = document.createElementNS(SVG_NS, 'title');
  titleElement.setAttribute('id', `${id}-title`);
  titleElement.textContent = title;
  const description = document.createElementNS(SVG_NS, 'desc');
  description.setAttribute('id', `${id}-desc`);
  description.textContent = drawn.map((one) => `${one.label}: ${one.segments.length} leverage step(s). `).join('');
  svg.prepend(titleElement, description);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-labelledby', `${id}-title ${id}-desc`);
  svg.setAttribute('xmlns', SVG_NS);
}
