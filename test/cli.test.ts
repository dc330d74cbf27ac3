/**
 * The command line in process (runCli) and as real processes: exit codes, help, the single-writer
 * lock, and the health verdict.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { judgeHealth, defaultHealthThresholdMs } from '../src/collect/health.ts';
import { COMMANDS } from '../src/commands/index.ts';
import { acquireWriterLock } from '../src/store/writer-lock.ts';
import { runCliCaptured, startHarness } from './helpers/harness.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

const cli = (argv: string[], env: Record<string, string | undefined> = {}) => runCliCaptured(argv, { env });

test('--version prints the package version; no command prints help and exits 2', async () => {
  const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
  assert.deepEqual(await cli(['--version']).then((r) => [r.code, r.stdout.trim()]), [0, version]);
  const bare = await cli([]);
  assert.equal(bare.code, 2);
  assert.match(bare.stdout + bare.stderr, /Usage: tierwatch/);
});

test('every command has --help, and it never shows a secret from the environment', async () => {
  const secretEnv = { QFEX_SECRET_KEY: 'qfex_secret_HELP_MUST_NOT_SHOW', QFEX_JWT: 'eyJ.HELP.MUST_NOT_SHOW' };
  for (const spec of COMMANDS) {
    const result = await cli([spec.name, '--help'], secretEnv);
    assert.equal(result.code, 0, spec.name);
    assert.match(result.stdout, new RegExp(`Usage: tierwatch ${spec.name}`), spec.name);
    assert.ok(!result.stdout.includes('MUST_NOT_SHOW'), spec.name);
  }
});

test('bad usage and bad configuration exit 2 with a message naming the problem', async () => {
  const unknown = await cli(['collect', '--no-such-flag']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown option '--no-such-flag'/);
  const badEnv = await cli(['collect'], { TIERWATCH_MAX_PAGES: '-3', QFEX_PUBLIC_KEY: 'p', QFEX_SECRET_KEY: 's' });
  assert.equal(badEnv.code, 2);
  assert.match(badEnv.stderr, /`TIERWATCH_MAX_PAGES`/);
  const badFlag = await cli(['collect', '--page-size', '5000'], { QFEX_PUBLIC_KEY: 'p', QFEX_SECRET_KEY: 's' });
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /`--page-size` to be an integer from 1 to 1000, got "5000"/);
  const noKeys = await cli(['check'], {});
  assert.equal(noKeys.code, 2);
  assert.match(noKeys.stderr, /No credentials/);
  const plainWs = await cli(['collect', '--url', 'ws://203.0.113.5:80'], {
    QFEX_PUBLIC_KEY: 'p',
    QFEX_SECRET_KEY: 's',
  });
  assert.equal(plainWs.code, 2);
  assert.match(plainWs.stderr, /loopback/);
});

test('collect and check against the simulator; health judges the result', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    const check = await cli(['check'], h.env);
    assert.equal(check.code, 0, check.stderr);
    assert.match(
      check.stdout,
      new RegExp(
        `ok  primary: authenticated at ${h.sim.url.replace(/[/.]/g, '\\$&')}/; first page has ${h.sim.tiers().length} valid tier`,
      ),
    );
    assert.ok(!existsSync(`${h.dbPath}.lock`), 'check writes nothing');

    const collect = await cli(['collect'], h.env);
    assert.equal(collect.code, 0, collect.stderr);
    const healthy = await cli(['health', '--max-age', '1h'], h.env);
    assert.equal(healthy.code, 0);
    assert.match(healthy.stdout, /^healthy: 1 account/);
    const otherAccount = await cli(['health', '--accounts', 'primary,sub-1'], h.env);
    assert.equal(otherAccount.code, 1);
    assert.match(otherAccount.stdout, /unhealthy: account sub-1 has no successful sweep yet/);

    h.sim.inject({ kind: 'reject_auth' });
    const rejected = await cli(['collect'], { ...h.env, TIERWATCH_SWEEP_RETRIES: '0' });
    assert.equal(rejected.code, 1);
  } finally {
    await h.close();
  }
});

test('health without a database is unhealthy, not an error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-health-'));
  try {
    const result = await cli(['health'], { TIERWATCH_DB: join(dir, 'none.db') });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /unhealthy: no database at/);
    assert.ok(!existsSync(join(dir, 'none.db')), 'health creates nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the health verdict: every account within the threshold, derived from the schedule', () => {
  const now = new Date('2026-11-24T12:00:00.000Z');
  const ok = judgeHealth([{ accountId: 'primary', lastSuccessAt: '2026-11-24T11:55:00.000Z' }], 10 * 60_000, now);
  assert.deepEqual(ok.healthy, true);
  const stale = judgeHealth(
    [
      { accountId: 'primary', lastSuccessAt: '2026-11-24T11:59:00.000Z' },
      { accountId: 'sub', lastSuccessAt: '2026-11-24T11:40:00.000Z' },
    ],
    10 * 60_000,
    now,
  );
  assert.deepEqual(stale, {
    healthy: false,
    reason: 'account sub: last successful sweep at 2026-11-24T11:40:00.000Z, 1200 s ago (limit 600 s)',
  });
  assert.equal(defaultHealthThresholdMs('*/5 * * * *'), 10 * 60_000);
  assert.equal(defaultHealthThresholdMs('*/2 * * * * *'), 60_000, 'never under a minute');
  assert.equal(defaultHealthThresholdMs('0 * * * *'), 2 * 3_600_000);
});

test('one writer per database: a second writer is refused naming the holder, and a killed holder frees it', async () => {
  const h = await startHarness();
  try {
    h.db.close();
    // In this process: the lock refuses a second writer and is free again once released.
    const held = acquireWriterLock(h.dbPath, 'test holder');
    const refused = await cli(['collect'], h.env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /being written by `test holder` \(pid \d+ on .*, since /);
    held.release();

    // Across processes: a daemon holds it; collect is refused; SIGKILL frees it at once.
    const daemon = spawn(process.execPath, [CLI, 'run'], {
      env: { ...process.env, ...h.env, TIERWATCH_SCHEDULE: '0 0 1 1 *' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let daemonLog = '';
    daemon.stderr.on('data', (chunk: Buffer) => (daemonLog += chunk.toString('utf8')));
    const exited = once(daemon, 'exit');
    try {
      while (!daemonLog.includes('sweep ok')) await once(daemon.stderr, 'data');
      const whileRunning = await cli(['collect'], h.env);
      assert.equal(whileRunning.code, 1);
      assert.match(whileRunning.stderr, new RegExp(`\`tierwatch run\` \\(pid ${daemon.pid} `));
      // Readers are never blocked by the writer.
      const health = await cli(['health', '--max-age', '1h'], h.env);
      assert.equal(health.code, 0, health.stdout);
    } finally {
      daemon.kill('SIGKILL');
      await exited;
    }
    const afterKill = await cli(['collect'], h.env);
    assert.equal(afterKill.code, 0, afterKill.stderr);
  } finally {
    await h.close();
  }
});
