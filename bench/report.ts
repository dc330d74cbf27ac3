/**
 * How `npm run bench` (run.ts) shows its results: one table per section, every figure beside the
 * baseline measured in the same run and each target marked met or MISSED, as plain text for the
 * terminal and as markdown for the docs. Reads only the results object that run.ts also writes to
 * bench/results.json.
 */
import { round, type TargetCheck } from './stats.ts';
import type { SweepSizeResult } from './sweep-worker.ts';
import type { WebAnswerFigures } from './web.ts';
import type { PgSizeResult } from './pg.ts';
import type { QueryPair } from './pg-queries.ts';

const mib = (bytes: number | null | undefined) =>
  bytes == null || !Number.isFinite(bytes) ? '–' : `${round(bytes / 1048576, 1)} MiB`;
const ms = (value: number | null | undefined) =>
  value == null
    ? '–'
    : value < 1
      ? `${round(value, 3)} ms`
      : value < 100
        ? `${round(value, 1)} ms`
        : `${Math.round(value)} ms`;
const ratio = (value: number) => `${round(value, value < 10 ? 2 : 1)}×`;

/** The sweeps measured on both backends: the row's name, its figure, and the figure's ratio. */
const PG_SWEEPS = [
  ['first sweep', 'first_sweep_ms', 'first_sweep'],
  ['steady, unchanged', 'steady_unchanged_p50_ms', 'steady_unchanged'],
  ['steady, 1% changed', 'steady_changed_1pct_p50_ms', 'steady_changed_1pct'],
] as const;

type Row = [string, string, string, string, string];

function targetRows(checks: Record<string, TargetCheck>): Row[] {
  return Object.values(checks).map((check) => [
    check.target,
    `${check.unit.startsWith('ms') ? ms(check.value) : check.unit === 'bytes' ? `${Math.round(check.value).toLocaleString('en')} B` : `${check.value} ${check.unit}`}`,
    `${check.unit.startsWith('ms') ? ms(check.baseline) : check.unit === 'bytes' ? `${Math.round(check.baseline).toLocaleString('en')} B` : `${check.baseline} ${check.unit}`} (${check.baseline_name})`,
    ratio(check.ratio_to_baseline),
    check.met ? 'met' : 'MISSED',
  ]);
}

function markdownTable(header: string[], rows: string[][]): string {
  const escape = (cell: string) => cell.replace(/\|/g, '\\|');
  return [
    `| ${header.map(escape).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n');
}

/** The results as a plain-text table for the terminal and as markdown (`--markdown`). */
export function render(results: Record<string, any>): { text: string; markdown: string } {
  const sections: Array<{ title: string; header: string[]; rows: string[][] }> = [];
  const m = results.machine;
  const machineLine = `${m.nproc} CPU (${m.cpu_model}), ${mib(m.memory_bytes)} RAM, Node ${m.node_version}, SQLite ${m.sqlite_version}; load average ${m.loadavg_at_start.join(' / ')} at start, ${m.loadavg_at_end.join(' / ')} at end (1/5/15 min)`;

  if (results.sweep) {
    const rows: string[][] = [];
    for (const [tiers, size] of Object.entries(results.sweep.by_tiers as Record<string, SweepSizeResult>)) {
      const label = Number(tiers).toLocaleString('en');
      const line = (mode: string, s: Record<string, number>, extra = '') => [
        label,
        mode,
        ms(s.total_p50_ms),
        ms(s.paging_p50_ms),
        ms(s.validation_p50_ms),
        ms(s.diff_p50_ms),
        ms(s.commit_p50_ms) + extra,
        `${Math.round(s.tiers_per_s! / 1000)}k`,
        ms(size.floor.p50_ms),
        ratio(s.total_p50_ms! / size.floor.p50_ms),
      ];
      // The steady total is sweepAccount's durationMs, which ends before the WAL checkpoint that
      // follows the sweep: shown beside the commit so no cost is hidden. One-shot totals include it.
      const after = (s: Record<string, number>) => `checkpoint after ${ms(s.checkpoint_after_p50_ms)}`;
      const oneShot = (s: Record<string, number>) =>
        ` (+open ${ms(s.open_p50_ms)}, close ${ms(s.close_p50_ms)}, ${after(s)})`;
      rows.push(line('steady, unchanged', size.steady.unchanged, ` (+${after(size.steady.unchanged)})`));
      rows.push(line('steady, 1% changed', size.steady.changed_1pct, ` (+${after(size.steady.changed_1pct)})`));
      rows.push(line('one-shot, unchanged', size.one_shot.unchanged, oneShot(size.one_shot.unchanged)));
      rows.push(line('one-shot, 1% changed', size.one_shot.changed_1pct, oneShot(size.one_shot.changed_1pct)));
      // A row with one figure (in the total column) and an optional note in the last column.
      const single = (mode: string, total: string, note = '') => [label, mode, total, '', '', '', '', '', '', note];
      if (size.cli_collect) {
        const { wall_p50_ms, peak_rss_bytes } = size.cli_collect;
        rows.push(single('`tierwatch collect` process', ms(wall_p50_ms), `peak RSS ${mib(peak_rss_bytes)}`));
      }
      rows.push(single('floor without UTF-8 decoding', ms(size.floor.without_decode_p50_ms)));
      rows.push(single('sweep process peak RSS', mib(size.peak_rss_bytes)));
    }
    sections.push({
      title: 'Sweeps over loopback (simulator in its own process, pre-serialised pages, page size 1000; medians)',
      header: [
        'tiers',
        'mode',
        'total',
        'paging',
        'validation',
        'diff',
        'commit (incl. diff)',
        'tiers/s',
        'floor',
        'total/floor',
      ],
      rows,
    });
  }
  if (results.storage) {
    const s = results.storage;
    sections.push({
      title: `Storage (${s.sweeps} sweeps of ${s.tiers.toLocaleString('en')} tiers, ${s.changed_tiers_per_sweep} tiers changed per sweep; sizes after a WAL checkpoint)`,
      header: ['figure', 'tierwatch', 'naive full copy', 'ratio'],
      rows: [
        [
          'database after the first sweep',
          `${mib(s.history_bytes_after_first_sweep)}`,
          mib(s.naive_bytes_per_sweep),
          ratio(s.history_bytes_after_first_sweep / s.naive_bytes_per_sweep),
        ],
        [
          'database after 200 sweeps',
          mib(s.history_bytes_after_200_sweeps),
          mib(s.naive_full_copy_bytes),
          `${ratio(s.naive_full_copy_bytes / s.history_bytes_after_200_sweeps)} smaller`,
        ],
        [
          'bytes added per sweep with 10 changes',
          `${s.history_bytes_per_changed_sweep.toLocaleString('en')} B`,
          `${s.naive_bytes_per_sweep.toLocaleString('en')} B`,
          ratio(s.naive_bytes_per_sweep / s.history_bytes_per_changed_sweep),
        ],
        [
          'bytes added per unchanged sweep (mean of 100)',
          `${s.bytes_per_unchanged_sweep} B`,
          `${s.naive_bytes_per_sweep.toLocaleString('en')} B`,
          ratio(s.naive_bytes_per_sweep / s.bytes_per_unchanged_sweep),
        ],
        [
          'sweeps until 100× smaller (extrapolated)',
          s.sweeps_until_100x_smaller === null
            ? 'never'
            : `${s.sweeps_until_100x_smaller} (${round((s.sweeps_until_100x_smaller * 5) / 1440, 1)} days at 5 min)`,
          '',
          '',
        ],
      ],
    });
  }
  if (results.queries) {
    const q = results.queries;
    const line = (name: string, t: any) => [
      name,
      String(t.rows),
      ms(t.p50_ms),
      ms(t.p95_ms),
      ms(t.floor_p50_ms),
      ratio(t.ratio_to_floor),
    ];
    const rows = [
      line('snapshot --at T --symbol S (one symbol)', q.snapshot_one_symbol),
      line('snapshot --at T (whole exchange)', q.snapshot_everything),
      line('diff over one week', q.diff_week),
      line('diff over the year', q.diff_year),
      line('changes --since 7d', q.changes_since_7d),
      line('history SYMBOL', q.history_symbol),
    ];
    if (q.cli) {
      rows.push(['CLI start-up: node -e 0 (baseline)', '', ms(q.cli.node_baseline.p50_ms), '', '', '']);
      rows.push([
        'CLI start-up: tierwatch --version',
        '',
        ms(q.cli.version.p50_ms),
        '',
        ms(q.cli.node_baseline.p50_ms),
        ratio(q.cli.version.ratio_to_node),
      ]);
      rows.push([
        'CLI: tierwatch snapshot --symbol S (whole process)',
        String(q.snapshot_one_symbol.rows),
        ms(q.cli.snapshot_one_symbol.p50_ms),
        '',
        ms(q.cli.node_baseline.p50_ms),
        ratio(q.cli.snapshot_one_symbol.ratio_to_node),
      ]);
    }
    sections.push({
      title: `Queries on one year of 5-minute sweeps (${q.history.runs.toLocaleString('en')} runs, ${q.history.tier_versions.toLocaleString('en')} versions, ${q.history.tier_changes.toLocaleString('en')} changes, ${mib(q.history.bytes)}; built in ${q.history.build_s} s), in process`,
      header: ['query', 'rows', 'p50', 'p95', 'floor (same rows by primary key)', 'p50/floor'],
      rows,
    });
  }
  if (results.upgrade?.error) {
    sections.push({
      title: 'Upgrade in place from 0.1.0',
      header: ['figure', 'value'],
      rows: [['FAILED', results.upgrade.error]],
    });
  } else if (results.upgrade) {
    const u = results.upgrade;
    sections.push({
      title: `Upgrade in place from ${u.from_version}: the year written by 0.1.0's own code (${u.history.tier_versions.toLocaleString('en')} versions, ${u.history.tier_changes.toLocaleString('en')} changes)`,
      header: ['figure', 'value'],
      rows: [
        [
          'answers compared (changes, snapshot --at, diff, history, runs)',
          `${u.questions_compared} questions, ${u.rows_compared.toLocaleString('en')} rows: ${u.answers_identical ? 'all identical' : `identical but ${u.differing_questions.join(', ')}`}`,
        ],
        [
          'the whole feed, row by row',
          `${u.feed_rows_compared.toLocaleString('en')} rows, ${u.feed_rows_differing} differing${u.feed_rows_differing_why ? `: ${u.feed_rows_differing_why}` : ''}`,
        ],
        [
          'upgrade killed half-way (SIGKILL)',
          `database file byte for byte unchanged: ${u.kill_mid_upgrade.database_file_unchanged}`,
        ],
        ['upgrade time (one transaction, at start)', `${u.upgrade_s} s`],
        [
          'size: 0.1.0 → upgraded → after VACUUM',
          `${mib(u.bytes_0_1_0)} → ${mib(u.bytes_after_upgrade)} → ${mib(u.bytes_after_upgrade_and_vacuum)}`,
        ],
      ],
    });
  }
  if (results.daemon && !results.daemon.skipped) {
    const d = results.daemon;
    sections.push({
      title: `Daemon (\`tierwatch run\`, ${d.tiers.toLocaleString('en')} tiers, a sweep ${d.schedule}; RSS ${d.settle_ms} ms after each sweep)`,
      header: ['figure', 'value', 'baseline (idle `node`)', 'ratio'],
      rows: [
        [
          'first start (creates and migrates the database): idle RSS, median',
          mib(d.first_start.idle_rss_p50_bytes),
          mib(d.idle_node_rss_bytes),
          ratio(d.first_start.idle_rss_p50_bytes / d.idle_node_rss_bytes),
        ],
        [
          'first start: idle RSS max / peak (VmHWM)',
          `${mib(d.first_start.idle_rss_max_bytes)} / ${mib(d.first_start.peak_rss_bytes)}`,
          '',
          '',
        ],
        [
          'restart on a migrated database: idle RSS, median',
          mib(d.restart_on_migrated_db.idle_rss_p50_bytes),
          mib(d.idle_node_rss_bytes),
          ratio(d.restart_on_migrated_db.idle_rss_p50_bytes / d.idle_node_rss_bytes),
        ],
        [
          'restart: idle RSS max / peak (VmHWM)',
          `${mib(d.restart_on_migrated_db.idle_rss_max_bytes)} / ${mib(d.restart_on_migrated_db.peak_rss_bytes)}`,
          '',
          '',
        ],
        ...(d.restart_with_metrics_endpoint
          ? [
              [
                'restart with the metrics endpoint (TIERWATCH_HTTP_PORT, loads prom-client): idle RSS, median',
                mib(d.restart_with_metrics_endpoint.idle_rss_p50_bytes),
                mib(d.idle_node_rss_bytes),
                ratio(d.restart_with_metrics_endpoint.idle_rss_p50_bytes / d.idle_node_rss_bytes),
              ],
              [
                'restart with the metrics endpoint: idle RSS max / peak (VmHWM)',
                `${mib(d.restart_with_metrics_endpoint.idle_rss_max_bytes)} / ${mib(d.restart_with_metrics_endpoint.peak_rss_bytes)}`,
                '',
                '',
              ],
            ]
          : []),
      ],
    });
  }
  if (results.endless) {
    sections.push({
      title:
        '`tierwatch collect` against an endless server (issue 10: bounded by TIERWATCH_MAX_TIERS, target peak RSS < 300 MiB)',
      header: ['server', 'exit', 'error code', 'peak RSS', 'wall'],
      rows: (results.endless as Array<Record<string, any>>).map((r) => [
        r.case,
        String(r.exit),
        r.error_code ?? '',
        r.peak_rss_bytes === null
          ? 'n/a'
          : `${mib(r.peak_rss_bytes)}${r.peak_rss_bytes < 300 * 1024 * 1024 ? '' : ' (MISSED)'}`,
        ms(r.wall_ms),
      ]),
    });
  }
  if (results.web) {
    const w = results.web;
    sections.push({
      title: `Web view (\`tierwatch serve\`) on the same year: HTTP on loopback, request to last byte (target ≤ 300 ms), beside the CLI's same question in process; HTTP floor (GET /healthz) ${ms(w.http_floor_p50_ms)}`,
      header: ['answer', 'bytes', 'HTTP p50', 'HTTP p95', 'CLI --format json (in process)', 'HTTP/CLI'],
      rows: (w.answers as WebAnswerFigures[]).map((a) => [
        a.what,
        a.bytes.toLocaleString('en'),
        ms(a.http_p50_ms),
        ms(a.http_p95_ms),
        a.cli_in_process_p50_ms === null ? '' : ms(a.cli_in_process_p50_ms),
        a.cli_in_process_p50_ms === null ? '' : ratio(a.http_p50_ms / a.cli_in_process_p50_ms),
      ]),
    });
  }
  if (results.pg?.skipped) {
    sections.push({
      title: 'Postgres beside SQLite',
      header: ['figure', 'value'],
      rows: [['skipped', results.pg.skipped]],
    });
  } else if (results.pg) {
    const rows: string[][] = [];
    for (const [tiers, size] of Object.entries(results.pg.by_tiers as Record<string, PgSizeResult>)) {
      const label = Number(tiers).toLocaleString('en');
      for (const [name, figure, ratioOf] of PG_SWEEPS) {
        rows.push([label, name, ms(size.sqlite[figure]), ms(size.postgres[figure]), ratio(size.ratio[ratioOf])]);
      }
      rows.push([label, 'steady, after a takeover (reload)', '', ms(size.postgres.steady_after_takeover_p50_ms), '']);
    }
    sections.push({
      title: `Postgres beside SQLite (startRun + commitSweep; Postgres ${results.pg.postgres_version}, ${results.pg.server}, one round trip ${ms(results.pg.round_trip_p50_ms)}; steady figures are medians)`,
      header: ['tiers', 'sweep', 'SQLite', 'Postgres', 'Postgres/SQLite'],
      rows,
    });
    const queries = results.pg.queries as { history: string; by_query: Record<string, QueryPair> };
    sections.push({
      title: `Postgres beside SQLite: the query commands' questions through HistorySource (${queries.history}; medians)`,
      header: ['question', 'rows', 'SQLite', 'Postgres', 'Postgres/SQLite', '≤ 2×'],
      rows: Object.entries(queries.by_query).map(([name, pair]) => [
        name,
        pair.rows.toLocaleString('en'),
        ms(pair.sqlite_p50_ms),
        ms(pair.postgres_p50_ms),
        ratio(pair.ratio),
        pair.ratio <= 2 ? 'met' : 'MISSED',
      ]),
    });
  }
  const allTargets: Record<string, TargetCheck> = {
    ...(results.pg?.targets ?? {}),
    ...(results.web?.targets ?? {}),
    ...(results.sweep?.targets ?? {}),
    ...(results.storage?.targets ?? {}),
    ...(results.queries?.targets ?? {}),
    ...(results.daemon?.target ? { daemon: results.daemon.target, daemon_restart: results.daemon.target_restart } : {}),
  };
  sections.push({
    title: 'Targets (issue 6)',
    header: ['target', 'measured', 'baseline (same run)', 'ratio', 'verdict'],
    rows: targetRows(allTargets),
  });

  const widths = (header: string[], rows: string[][]) =>
    header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const text = [
    `Machine: ${machineLine}`,
    ...sections.map(({ title, header, rows }) => {
      const w = widths(header, rows);
      const fmt = (row: string[]) =>
        row
          .map((cell, i) => (cell ?? '').padEnd(w[i]!))
          .join('  ')
          .trimEnd();
      return [`\n${title}`, fmt(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt)].join('\n');
    }),
  ].join('\n');
  const markdown = [
    `Measured with \`npm run bench\` on ${m.started_at.slice(0, 10)}: ${machineLine}. Every ratio is against a baseline measured in the same run.`,
    ...sections.map(({ title, header, rows }) => `\n**${title}**\n\n${markdownTable(header, rows)}`),
  ].join('\n');
  return { text, markdown };
}
