/**
 * Metrics that fit in (issue 13): standard process_/nodejs_ names, tierwatch_build_info, every
 * labelled counter present from the start, failures by error code, and Prometheus' own promtool
 * accepting the exposition. promtool comes from Debian's `prometheus` package (.ci/run installs
 * it); without it the promtool check is skipped locally and fails under CI=true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CHANGE_KINDS, RUN_OUTCOMES, SweepMetrics } from '../src/collect/metrics.ts';
import { ERROR_CODES, TierwatchError } from '../src/errors.ts';
import { packageVersion } from '../src/paths.ts';
import { CHANGE_KINDS as SCHEMA_CHANGE_KINDS, RUN_STATUSES } from '../src/store/schema.ts';
import { startHarness } from './helpers/harness.ts';
import { startHttpDaemon } from './helpers/http-daemon.ts';

function promtoolAvailable(): boolean {
  return spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** `promtool check metrics` on `exposition`: its complaints, empty when it is clean. */
function promtoolComplaints(exposition: string): string {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  return result.status === 0
    ? `${result.stdout}${result.stderr}`.trim()
    : `exit ${String(result.status)}: ${result.stdout}${result.stderr}`;
}

test('the daemon’s /metrics: standard names, build info, every series from the start, promtool clean', async (t) => {
  const h = await startHarness();
  try {
    const daemon = await startHttpDaemon(h, { QFEX_ACCOUNT_IDS: 'primary' });
    let exposition: string;
    try {
      exposition = await (await fetch(`${daemon.base}/metrics`)).text();
    } finally {
      assert.equal(await daemon.stop(), 0);
    }

    assert.match(exposition, /^process_cpu_user_seconds_total \d/m);
    assert.match(exposition, /^process_resident_memory_bytes \d/m);
    assert.match(exposition, /^nodejs_heap_size_used_bytes \d/m);
    assert.doesNotMatch(exposition, /tierwatch_(process|nodejs)_/);
    assert.match(
      exposition,
      new RegExp(
        `^tierwatch_build_info\\{version="${packageVersion().replace(/\./g, '\\.')}",node_version="${process.version}"\\} 1$`,
        'm',
      ),
    );
    for (const status of RUN_OUTCOMES) {
      assert.match(
        exposition,
        new RegExp(`^tierwatch_runs_total\\{account="primary",status="${status}"\\} ${status === 'ok' ? 1 : 0}$`, 'm'),
      );
    }
    for (const change of CHANGE_KINDS) {
      assert.match(
        exposition,
        new RegExp(`^tierwatch_changes_total\\{account="primary",change="${change}"\\} \\d+$`, 'm'),
      );
    }
    for (const code of Object.keys(ERROR_CODES)) {
      assert.match(
        exposition,
        new RegExp(`^tierwatch_run_failures_total\\{account="primary",code="${code}"\\} 0$`, 'm'),
      );
    }
    assert.match(exposition, /^tierwatch_alert_deliveries_total\{result="failed"\} 0$/m);
    assert.match(exposition, /^tierwatch_alerts_pending 0$/m);

    if (!promtoolAvailable()) {
      if (process.env.CI === 'true') {
        assert.fail('promtool is missing; CI must install it (apt-get install -y prometheus)');
      }
      t.skip('promtool not installed (apt-get install -y prometheus); CI=true makes this a failure');
      return;
    }
    assert.equal(promtoolComplaints(exposition), '');
  } finally {
    await h.close();
  }
});

test('a failed run counts under its error code; the status and kind lists match the schema', async () => {
  const metrics = new SweepMetrics({ processMetrics: false, accountIds: ['primary', 'sub1'] });
  metrics.record({
    ok: false,
    runId: 1,
    accountId: 'sub1',
    durationMs: 12,
    error: new TierwatchError('QFEX_TIMEOUT', 'page 2 did not arrive in time'),
    ignoredFrames: {},
  });
  metrics.record({
    ok: false,
    runId: 2,
    accountId: 'sub1',
    durationMs: 3,
    error: new TierwatchError('ABORTED', 'stopped'),
    ignoredFrames: {},
  });
  const text = await metrics.registry.metrics();
  assert.match(text, /^tierwatch_run_failures_total\{account="sub1",code="QFEX_TIMEOUT"\} 1$/m);
  assert.match(text, /^tierwatch_run_failures_total\{account="sub1",code="ABORTED"\} 1$/m);
  assert.match(text, /^tierwatch_runs_total\{account="sub1",status="failed"\} 1$/m);
  assert.match(text, /^tierwatch_runs_total\{account="sub1",status="aborted"\} 1$/m);
  assert.match(text, /^tierwatch_run_failures_total\{account="primary",code="QFEX_TIMEOUT"\} 0$/m);
  for (const status of RUN_OUTCOMES) assert.ok((RUN_STATUSES as readonly string[]).includes(status), status);
  assert.deepEqual([...CHANGE_KINDS], [...SCHEMA_CHANGE_KINDS]);
});
