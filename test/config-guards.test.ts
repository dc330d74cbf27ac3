/**
 * Config that cannot lie (issues 10 and 11), through the CLI: durations above Node's timer limit,
 * zero timeouts, bare numbers and URL fragments are refused at start with exit 2; secret files are
 * regular files read with a cap (never /dev/zero's endless bytes, never a FIFO's endless wait); an
 * unknown TIERWATCH_* / QFEX_* variable is warned about with the nearest known name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliCaptured, startHarness } from './helpers/harness.ts';
import { spawnCli, type CliChild } from './helpers/faults.ts';
import { DEMO_SECRET_KEY } from '../src/sim/index.ts';
import { openDatabase } from '../src/store/db.ts';

/** The child's exit code, or a failure once `timeoutMs` has passed (then the child is killed). */
async function exitWithin(run: CliChild, timeoutMs: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const outcome = await Promise.race([run.exited, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    run.child.kill('SIGKILL');
    await run.exited;
    assert.fail(`still running after ${timeoutMs} ms; stderr:\n${run.stderr().slice(-2000)}`);
  }
  return outcome;
}

test('durations above the timer limit, zero timeouts and bare numbers are refused at start, naming the variable', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [
        { TIERWATCH_REQUEST_TIMEOUT: '25d' },
        /`TIERWATCH_REQUEST_TIMEOUT` to be at most 2147483647ms \(about 24\.8 days\) \(Node's timer limit.*got "25d"/,
      ],
      [{ TIERWATCH_CONNECT_TIMEOUT: '600h' }, /`TIERWATCH_CONNECT_TIMEOUT` to be at most .*got "600h"/],
      [{ TIERWATCH_SHUTDOWN_TIMEOUT: '30d' }, /`TIERWATCH_SHUTDOWN_TIMEOUT`/],
      [{ TIERWATCH_REQUEST_TIMEOUT: '0s' }, /`TIERWATCH_REQUEST_TIMEOUT` to be a duration greater than zero, got "0s"/],
      [{ TIERWATCH_WEBHOOK_TIMEOUT: '0ms' }, /`TIERWATCH_WEBHOOK_TIMEOUT` to be a duration greater than zero/],
      [
        { TIERWATCH_REQUEST_TIMEOUT: '0' },
        /`TIERWATCH_REQUEST_TIMEOUT` to be a duration with a unit: 500ms, 10s, 5m, 1h or 2d, got "0" \(a bare number is ambiguous/,
      ],
      [
        { TIERWATCH_REQUEST_TIMEOUT: '5000' },
        /`TIERWATCH_REQUEST_TIMEOUT` to be a duration with a unit: 500ms, 10s, 5m, 1h or 2d, got "5000"/,
      ],
      [{ TIERWATCH_HEALTH_MAX_AGE: '5' }, /`TIERWATCH_HEALTH_MAX_AGE` to be a duration with a unit/],
      [{ QFEX_WS_URL: `${h.sim.url}/#frag` }, /`QFEX_WS_URL` must not have a #fragment.*#frag/],
    ];
    for (const [extra, message] of cases) {
      const result = await runCliCaptured(['collect'], { env: { ...h.env, ...extra } });
      assert.equal(result.code, 2, `${JSON.stringify(extra)}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    assert.equal(h.sim.stats.connections, 0, 'nothing was attempted');
    // The limit itself is accepted; the health threshold is no timer and may be longer.
    const ok = await runCliCaptured(['collect'], {
      env: { ...h.env, TIERWATCH_SHUTDOWN_TIMEOUT: '2147483647ms', TIERWATCH_HEALTH_MAX_AGE: '60d' },
    });
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await h.close();
  }
});

test('a bare-number duration flag is refused with exit 2 and the accepted forms', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-durations-'));
  try {
    const demo = await runCliCaptured(['demo', '--duration', '25', '--db', join(dir, 'demo.db')]);
    assert.equal(demo.code, 2, demo.stderr);
    assert.match(demo.stderr, /`--duration` to be a duration with a unit: 500ms, 10s, 5m, 1h or 2d, got "25"/);
    const health = await runCliCaptured(['health', '--max-age', '5', '--db', join(dir, 'none.db')]);
    assert.equal(health.code, 2, health.stdout);
    assert.match(health.stderr, /`--max-age` to be a duration with a unit.*got "5"/);
    const change = await runCliCaptured([
      'demo',
      '--duration',
      '1s',
      '--change-every',
      '0s',
      '--db',
      join(dir, 'demo.db'),
    ]);
    assert.equal(change.code, 2);
    assert.match(change.stderr, /`--change-every` to be a duration greater than zero/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreadable, empty, oversized or not-regular secret file exits 2 at start, naming the variable', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    const env = { ...h.env, QFEX_SECRET_KEY: '' };
    const empty = join(h.dir, 'empty');
    writeFileSync(empty, '\n');
    const big = join(h.dir, 'big');
    writeFileSync(big, 'x'.repeat(65 * 1024));
    const cases: Array<[string, RegExp]> = [
      [join(h.dir, 'missing'), /`QFEX_SECRET_KEY_FILE` names ".*missing", which cannot be read \(ENOENT\)/],
      [empty, /`QFEX_SECRET_KEY_FILE` names ".*empty", which is empty/],
      [h.dir, /`QFEX_SECRET_KEY_FILE` names .*, which is a directory: give a regular file/],
      [big, /which holds 66560 bytes, more than the 65536 allowed/],
    ];
    for (const [path, message] of cases) {
      const result = await runCliCaptured(['collect'], { env: { ...env, QFEX_SECRET_KEY_FILE: path } });
      assert.equal(result.code, 2, `${path}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    const webhook = await runCliCaptured(['collect'], {
      env: { ...h.env, TIERWATCH_WEBHOOK_URL: 'http://127.0.0.1:9/', TIERWATCH_WEBHOOK_SECRET_FILE: empty },
    });
    assert.equal(webhook.code, 2);
    assert.match(webhook.stderr, /`TIERWATCH_WEBHOOK_SECRET_FILE` names .*, which is empty/);
    const check = await runCliCaptured(['check'], { env: { ...env, QFEX_SECRET_KEY_FILE: empty } });
    assert.equal(check.code, 2, check.stdout);
    assert.equal(h.sim.stats.connections, 0, 'refused before any sweep');

    // As Kubernetes mounts secrets: a symlink to a regular file is followed.
    const real = join(h.dir, 'real-secret');
    writeFileSync(real, `${DEMO_SECRET_KEY}\n`);
    const link = join(h.dir, 'linked-secret');
    symlinkSync(real, link);
    const linked = await runCliCaptured(['collect'], { env: { ...env, QFEX_SECRET_KEY_FILE: link } });
    assert.equal(linked.code, 0, linked.stderr);
  } finally {
    await h.close();
  }
});

test('QFEX_SECRET_KEY_FILE=/dev/zero is refused at once, without growing memory', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    // Under a 2 GB address-space limit: reading /dev/zero to its (never) end fails; capped, it is refused at once.
    const zero = spawnCli(
      ['collect'],
      { ...h.env, QFEX_SECRET_KEY: '', QFEX_SECRET_KEY_FILE: '/dev/zero' },
      { shell: 'ulimit -v 2000000' },
    );
    assert.equal(await exitWithin(zero, 45_000), 2, zero.stderr());
    assert.match(zero.stderr(), /`QFEX_SECRET_KEY_FILE` names "\/dev\/zero", which is a character device/);
  } finally {
    await h.close();
  }
});

test('a FIFO as a secret file does not hang collect: exit 2 at once', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    // No writer ever opens it: a blocking open(2) would hang the process for good, past SIGTERM.
    const fifo = join(h.dir, 'secret.fifo');
    execFileSync('mkfifo', [fifo]);
    const piped = spawnCli(['collect'], { ...h.env, QFEX_SECRET_KEY: '', QFEX_SECRET_KEY_FILE: fifo });
    assert.equal(await exitWithin(piped, 45_000), 2, piped.stderr());
    assert.match(piped.stderr(), /`QFEX_SECRET_KEY_FILE` names ".*secret\.fifo", which is a FIFO \(named pipe\)/);
    const db = openDatabase(h.dbPath, { readonly: true });
    try {
      assert.equal(
        db.sqlite.prepare("SELECT count(*) FROM runs WHERE status = 'running'").pluck().get(),
        0,
        'no run left running',
      );
    } finally {
      db.close();
    }
  } finally {
    await h.close();
  }
});

test('an unknown TIERWATCH_* or QFEX_* variable is warned about once, with the nearest known name', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    const env = {
      ...h.env,
      TIERWATCH_SCHEDUEL: '*/1 * * * *',
      QFEX_PUBLIC_KYE: 'x',
      TIERWATCH_ENTIRELY_MADE_UP_THING: '1',
      OTHER_APP_SETTING: '1',
    };
    const result = await runCliCaptured(['collect'], { env });
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.logs.lines.filter((line) => typeof line.variable === 'string');
    assert.deepEqual(
      warnings.map((line) => [line.level, line.variable, line.suggestion]),
      [
        ['warn', 'QFEX_PUBLIC_KYE', 'QFEX_PUBLIC_KEY'],
        ['warn', 'TIERWATCH_ENTIRELY_MADE_UP_THING', null],
        ['warn', 'TIERWATCH_SCHEDUEL', 'TIERWATCH_SCHEDULE'],
      ],
    );
    assert.equal(
      warnings[2]!.msg,
      'TIERWATCH_SCHEDUEL is not a tierwatch setting and is ignored; did you mean TIERWATCH_SCHEDULE?',
    );
    // Every documented setting, its *_FILE form included, is known.
    const known = await runCliCaptured(['collect'], {
      env: {
        ...h.env,
        QFEX_SECRET_KEY: '',
        QFEX_SECRET_KEY_FILE: join(h.dir, 'k'),
        QFEX_JWT_FILE: '',
        TIERWATCH_WEBHOOK_SECRET: '',
        TIERWATCH_HTTP_HOST: '127.0.0.1',
      },
    });
    assert.equal(known.logs.lines.filter((line) => typeof line.variable === 'string').length, 0, known.logs.text());
  } finally {
    await h.close();
  }
});
