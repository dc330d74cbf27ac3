/**
 * The image's health check (docker/healthcheck.sh) with the HTTP server on asks the daemon's
 * /healthz over bash's /dev/tcp, starting no Node process; it fails when nothing answers.
 * (Its other branch, `tierwatch health`, and the image itself are checked by test/docker/run.sh.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startHarness } from './helpers/harness.ts';
import { startHttpDaemon } from './helpers/http-daemon.ts';

const SCRIPT = fileURLToPath(new URL('../docker/healthcheck.sh', import.meta.url));

/** Runs the script (asynchronously: the daemon answering it runs in this process). */
function check(env: Record<string, string>): Promise<{ status: number | null; stdout: string }> {
  // PATH without node: the /healthz branch must not need it.
  return new Promise((resolve) => {
    execFile(
      '/bin/bash',
      [SCRIPT],
      { env: { PATH: '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 20_000 },
      (error, stdout) => {
        resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout });
      },
    );
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('the health check asks /healthz when TIERWATCH_HTTP_PORT is set, without Node', async () => {
  const h = await startHarness();
  try {
    const daemon = await startHttpDaemon(h);
    try {
      const healthy = await check({ TIERWATCH_HTTP_PORT: String(daemon.port), TIERWATCH_HTTP_HOST: '0.0.0.0' });
      assert.equal(healthy.status, 0, healthy.stdout);
      assert.match(healthy.stdout, /^via \/healthz: healthy: 1 account/);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
    const closed = await check({ TIERWATCH_HTTP_PORT: String(await freePort()) });
    assert.equal(closed.status, 1);
    assert.match(closed.stdout, /^unhealthy: nothing answers on 127\.0\.0\.1:\d+/);
  } finally {
    await h.close();
  }
});
