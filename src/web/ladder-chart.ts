/**
 * A tier ladder as an SVG step chart, rendered on the server: notional on x, margin (a fraction of
 * notional) on y, one horizontal step per leverage: from the notional the previous (higher)
 * leverage stops at, up to this leverage's max_notional, at its initial margin (solid) and
 * maintenance margin (dashed). A second date is drawn over it in another colour.
 *
 * Server-side SVG rather than a client charting library: the page then runs no script at all (the
 * Content-Security-Policy forbids every script), weighs a few kilobytes, works without a network,
 * and `tierwatch report` embeds the same markup in a file. Every label goes through `html`, so a
 * hostile symbol or leverage is text.
 */
import { html, type Html } from './html.ts';

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

const WIDTH = 720;
const HEIGHT = 340;
const LEFT = 58;
const RIGHT = 20;
const TOP = 16;
const BOTTOM = 44;

/** Steps in ladder order: the smallest notional cap (highest leverage) first. */
export function ladderOrder(steps: readonly LadderStep[]): LadderStep[] {
  return [...steps].sort((a, b) => a.max_notional - b.max_notional || Number(b.leverage) - Number(a.leverage));
}

/** About `count` round tick values from 0 to at least `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) ?? 10 * power;
  // Up to the first tick at or above `max`, so the top of the axis is never below the data.
  const ticks = [0];
  while (ticks[ticks.length - 1]! < max - step * 1e-9) ticks.push(Number((ticks.length * step).toPrecision(12)));
  return ticks;
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

const round = (value: number) => Math.round(value * 10) / 10;

/** One ladder chart; `id` makes the title/description ids unique on a page with several charts. */
export function ladderChart(series: readonly LadderSeries[], title: string, id: string): Html {
  const all = series.flatMap((one) => one.steps);
  const xMax = Math.max(0, ...all.map((step) => step.max_notional));
  const yMax = Math.max(0, ...all.map((step) => Math.max(step.initial_margin, step.maintenance_margin)));
  const xTicks = niceTicks(xMax);
  const yTicks = niceTicks(yMax, 4);
  const xTop = xTicks[xTicks.length - 1]!;
  const yTop = yTicks[yTicks.length - 1]!;
  const x = (value: number) => round(LEFT + (value / xTop) * (WIDTH - LEFT - RIGHT));
  const y = (value: number) => round(HEIGHT - BOTTOM - (value / yTop) * (HEIGHT - TOP - BOTTOM));
  const plotBottom = HEIGHT - BOTTOM;

  const grid = html`<g class="grid">${yTicks.map((tick) => html`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y(tick)}" y2="${y(tick)}"/>`)}</g>`;
  const axes = html`<g class="axis">
<path d="M${LEFT} ${TOP}V${plotBottom}H${WIDTH - RIGHT}"/>
${xTicks.map((tick) => html`<line x1="${x(tick)}" x2="${x(tick)}" y1="${plotBottom}" y2="${plotBottom + 4}"/><text x="${x(tick)}" y="${plotBottom + 16}" text-anchor="middle">${compactNumber(tick)}</text>`)}
${yTicks.map((tick) => html`<text x="${LEFT - 6}" y="${y(tick) + 4}" text-anchor="end">${percent(tick)}</text>`)}
<text x="${(LEFT + WIDTH - RIGHT) / 2}" y="${HEIGHT - 6}" text-anchor="middle">notional (up to max_notional)</text>
<text x="14" y="${(TOP + plotBottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(TOP + plotBottom) / 2})">margin (share of notional)</text>
</g>`;

  const drawn = series.map((one) => {
    const steps = ladderOrder(one.steps);
    const lines = (['initial', 'maintenance'] as const).map((kind) => {
      const value = (step: LadderStep) => (kind === 'initial' ? step.initial_margin : step.maintenance_margin);
      let previous = 0;
      let risers = '';
      const segments = steps.map((step, index) => {
        const from = previous;
        previous = step.max_notional;
        if (index > 0) risers += `M${x(from)} ${y(value(steps[index - 1]!))}V${y(value(step))}`;
        return html`<path class="step ${kind}" data-leverage="${step.leverage}" d="M${x(from)} ${y(value(step))}H${x(step.max_notional)}"><title>${step.leverage}×: ${kind} margin ${percent(value(step))} up to ${compactNumber(step.max_notional)}</title></path>`;
      });
      return html`${risers === '' ? '' : html`<path class="riser ${kind}" d="${risers}"/>`}${segments}`;
    });
    const labels =
      one.role === 'at'
        ? steps.map((step, index) => {
            const from = index === 0 ? 0 : steps[index - 1]!.max_notional;
            return html`<text class="step-label" x="${round((x(from) + x(step.max_notional)) / 2)}" y="${y(step.initial_margin) - 5}" text-anchor="middle">${step.leverage}×</text>`;
          })
        : [];
    return html`<g class="series series-${one.role}" data-steps="${steps.length}">${lines}${labels}</g>`;
  });

  return html`<svg class="ladder" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="${id}-title ${id}-desc" xmlns="http://www.w3.org/2000/svg">
<title id="${id}-title">${title}</title>
<desc id="${id}-desc">${series.map((one) => `${one.label}: ${one.steps.length} leverage step(s). `)}</desc>
${grid}${axes}${drawn}
</svg>
<p class="legend">${series.map((one) => html`<span><span class="swatch ${one.role}"></span>${one.label} (solid: initial margin, dashed: maintenance margin)</span>`)}</p>`;
}
