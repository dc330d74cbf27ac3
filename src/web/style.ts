/**
 * The view's one stylesheet: served at /assets/style.css (the Content-Security-Policy allows styles
 * from 'self' only, so no inline style anywhere) and inlined into `tierwatch report` files.
 */
import { SERIES_COLOURS } from './ladder-chart.ts';

export const STYLE = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #fff; --soft: #f6f8fa;
  --at: ${SERIES_COLOURS.at}; --compare: ${SERIES_COLOURS.compare}; --tight: #b3261e; --loose: #1a7f37; --mixed: #8250df; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { background: var(--soft); border-bottom: 1px solid var(--line); padding: .5rem 1rem; display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; }
header .brand { font-weight: 700; }
nav ul { list-style: none; margin: 0; padding: 0; display: flex; gap: .9rem; flex-wrap: wrap; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: none; }
main { padding: 1rem; max-width: 1200px; }
footer { padding: 1rem; color: var(--muted); font-size: .85rem; border-top: 1px solid var(--line); }
h1 { font-size: 1.35rem; margin: .2rem 0 .8rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .5rem; overflow-wrap: anywhere; }
a { color: #0550ae; }
a:focus-visible, input:focus-visible, button:focus-visible, select:focus-visible { outline: 3px solid #fb8500; outline-offset: 2px; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: flex-end; background: var(--soft); border: 1px solid var(--line); padding: .7rem; border-radius: 6px; }
form.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
form.filters fieldset { border: 0; margin: 0; padding: 0; display: flex; gap: .5rem; align-items: center; font-size: .85rem; }
form.filters fieldset label { flex-direction: row; gap: .2rem; align-items: center; color: var(--fg); }
form.filters legend { color: var(--muted); float: left; margin-right: .3rem; }
input[type=text], input[type=number] { font: inherit; padding: .25rem .4rem; border: 1px solid var(--line); border-radius: 4px; min-width: 11rem; }
button { font: inherit; padding: .3rem .9rem; border: 1px solid #1f883d; background: #1f883d; color: #fff; border-radius: 4px; cursor: pointer; }
.hint { color: var(--muted); font-size: .85rem; }
.error { color: var(--tight); font-weight: 600; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .88rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .55rem; text-align: left; vertical-align: top; overflow-wrap: break-word; }
th { white-space: nowrap; }
th { background: var(--soft); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.dir { font-weight: 600; white-space: nowrap; }
.dir-tightening { color: var(--tight); }
.dir-loosening { color: var(--loose); }
.dir-mixed { color: var(--mixed); }
.dir-neutral { color: var(--muted); }
.verdict { padding: .5rem .8rem; border-radius: 6px; border: 1px solid var(--line); display: inline-block; }
.verdict.healthy { background: #dafbe1; }
.verdict.unhealthy { background: #ffebe9; }
ol.strip { list-style: none; display: flex; flex-wrap: wrap; gap: 2px; padding: 0; margin: .4rem 0; }
ol.strip li { width: 12px; height: 22px; border-radius: 2px; }
ol.strip li.ok { background: #2da44e; }
ol.strip li.failed, ol.strip li.aborted, ol.strip li.abandoned { background: #cf222e; }
ol.strip li.running { background: #bf8700; }
ol.strip li.missing { background: repeating-linear-gradient(45deg, #fff, #fff 3px, #afb8c1 3px, #afb8c1 5px); border: 1px solid #afb8c1; }
.legend { display: flex; gap: 1rem; flex-wrap: wrap; font-size: .85rem; color: var(--muted); margin: .2rem 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: .25rem; }
.swatch.ok { background: #2da44e; } .swatch.failed { background: #cf222e; } .swatch.missing { border: 1px solid #afb8c1; }
.swatch.at { background: var(--at); } .swatch.compare { background: var(--compare); }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
svg.ladder { width: 100%; max-width: 760px; height: auto; display: block; background: #fff; border: 1px solid var(--line); border-radius: 6px;
  color: #57606a; font: 11px system-ui, sans-serif; }
svg.ladder text { white-space: pre; }
.pager { display: flex; gap: 1rem; margin: .6rem 0; }
`;
