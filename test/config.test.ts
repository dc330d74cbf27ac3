import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig, loadConfig, parseDuration, resolveCredentials, requireCredentials } from '../src/config.ts';
import { TierwatchError } from '../src/errors.ts';

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof TierwatchError, `expected a TierwatchError, got ${String(error)}`);
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.message;
  }
  assert.fail('expected a CONFIG_INVALID error');
}

test('defaults: production endpoint, primary account, five-minute schedule', () => {
  const config = loadConfig({});
  assert.equal(config.wsUrl, 'wss://trade.qfex.com/');
  assert.equal(config.endpoint, 'wss://trade.qfex.com/');
  assert.deepEqual(config.accountIds, ['primary']);
  assert.equal(config.schedule, '*/5 * * * *');
  assert.equal(config.pageSize, 1000);
  assert.equal(config.maxPages, 10_000);
  assert.deepEqual(config.database, { kind: 'sqlite', path: './data/tierwatch.db' });
  assert.equal(config.timeouts.requestMs, 10_000);
  assert.ok(Object.isFrozen(config));
});

test('an empty variable counts as unset', () => {
  const config = loadConfig({ TIERWATCH_PAGE_SIZE: '', QFEX_WS_URL: '  ', QFEX_ACCOUNT_IDS: '' });
  assert.equal(config.pageSize, 1000);
  assert.equal(config.endpoint, 'wss://trade.qfex.com/');
  assert.deepEqual(config.accountIds, ['primary']);
});

test('bad values name the variable and quote what they got', () => {
  assert.match(
    configError(() => loadConfig({ TIERWATCH_PAGE_SIZE: '0' })),
    /`TIERWATCH_PAGE_SIZE` to be an integer from 1 to 1000, got "0"/,
  );
  assert.match(
    configError(() => loadConfig({ TIERWATCH_MAX_PAGES: 'lots' })),
    /`TIERWATCH_MAX_PAGES`.*"lots"/,
  );
  assert.match(
    configError(() => loadConfig({ TIERWATCH_SCHEDULE: '61 * * * *' })),
    /`TIERWATCH_SCHEDULE` to be a cron expression.*"61 \* \* \* \*"/,
  );
  assert.match(
    configError(() => loadConfig({ TIERWATCH_REQUEST_TIMEOUT: 'soon' })),
    /`TIERWATCH_REQUEST_TIMEOUT` to be a duration/,
  );
  assert.match(
    configError(() => loadConfig({ TIERWATCH_MAX_REMOVAL_RATIO: '1.5' })),
    /`TIERWATCH_MAX_REMOVAL_RATIO`/,
  );
  assert.match(
    configError(() => loadConfig({ LOG_LEVEL: 'loud' })),
    /`LOG_LEVEL` to be one of/,
  );
  assert.match(
    configError(() => loadConfig({ QFEX_ACCOUNT_IDS: 'primary,,x' })),
    /`QFEX_ACCOUNT_IDS`/,
  );
  assert.match(
    configError(() => loadConfig({ QFEX_ACCOUNT_IDS: 'primary,primary' })),
    /lists "primary" twice/,
  );
  assert.match(
    configError(() => loadConfig({ QFEX_CA_FILE: '/nonexistent/ca.pem' })),
    /`QFEX_CA_FILE` names "\/nonexistent\/ca.pem", which cannot be read/,
  );
});

test('a flag overrides the environment and is the name blamed', () => {
  const config = loadConfig(
    { TIERWATCH_PAGE_SIZE: '500' },
    { TIERWATCH_PAGE_SIZE: { value: '250', flag: '--page-size' } },
  );
  assert.equal(config.pageSize, 250);
  assert.match(
    configError(() => loadConfig({}, { TIERWATCH_PAGE_SIZE: { value: '2000', flag: '--page-size' } })),
    /`--page-size`/,
  );
});

test('plain ws:// is accepted only for loopback hosts', () => {
  for (const url of ['ws://127.0.0.1:8080', 'ws://localhost:1', 'ws://[::1]:9', 'ws://127.3.2.1/']) {
    assert.doesNotThrow(() => loadConfig({ QFEX_WS_URL: url }), url);
  }
  for (const url of ['ws://trade.qfex.com', 'ws://10.0.0.1:80', 'ws://192.168.1.2', 'ws://128.0.0.1']) {
    assert.match(
      configError(() => loadConfig({ QFEX_WS_URL: url })),
      /loopback/,
      url,
    );
  }
  assert.match(
    configError(() => loadConfig({ QFEX_WS_URL: 'https://trade.qfex.com' })),
    /wss:\/\//,
  );
  assert.match(
    configError(() => loadConfig({ QFEX_WS_URL: 'not a url' })),
    /`QFEX_WS_URL`/,
  );
});

test('the endpoint ignores the query string and the root slash', () => {
  assert.equal(loadConfig({ QFEX_WS_URL: 'wss://trade.qfex.io/?api_key=x' }).endpoint, 'wss://trade.qfex.io/');
  assert.equal(loadConfig({ QFEX_WS_URL: 'wss://trade.qfex.io' }).endpoint, 'wss://trade.qfex.io/');
  assert.equal(loadConfig({ QFEX_WS_URL: 'ws://127.0.0.1:4000' }).endpoint, 'ws://127.0.0.1:4000/');
});

test('durations', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('1.5m'), 90_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('250'), null, 'a bare number has no unit');
  assert.equal(parseDuration('-1s'), null);
  assert.equal(parseDuration('10 parsecs'), null);
});

test('credentials: required pair, secret files re-read at every call, never both sources', () => {
  assert.match(
    configError(() => requireCredentials(loadConfig({}))),
    /No credentials/,
  );
  assert.match(
    configError(() => requireCredentials(loadConfig({ QFEX_SECRET_KEY: 's' }))),
    /`QFEX_PUBLIC_KEY` is not set/,
  );
  assert.match(
    configError(() => loadConfig({ QFEX_SECRET_KEY: 's', QFEX_SECRET_KEY_FILE: '/x' })),
    /either `QFEX_SECRET_KEY` or `QFEX_SECRET_KEY_FILE`/,
  );

  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-config-'));
  try {
    const file = join(dir, 'secret');
    writeFileSync(file, 'first-secret\n');
    const config = loadConfig({ QFEX_PUBLIC_KEY: 'qfex_pub_x', QFEX_SECRET_KEY_FILE: file });
    assert.deepEqual(resolveCredentials(config), { kind: 'hmac', publicKey: 'qfex_pub_x', secretKey: 'first-secret' });
    writeFileSync(file, 'rotated-secret');
    assert.deepEqual(resolveCredentials(config), {
      kind: 'hmac',
      publicKey: 'qfex_pub_x',
      secretKey: 'rotated-secret',
    });
    writeFileSync(file, '\n');
    assert.match(
      configError(() => resolveCredentials(config)),
      /`QFEX_SECRET_KEY_FILE` names .* which is empty/,
    );
    rmSync(file);
    const message = configError(() => resolveCredentials(config));
    assert.match(message, /cannot be read \(ENOENT\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  assert.deepEqual(resolveCredentials(loadConfig({ QFEX_JWT: 'eyJ.abc.def' })), { kind: 'jwt', token: 'eyJ.abc.def' });
});

test('the described configuration shows where secrets come from, never their values', () => {
  const config = loadConfig({
    QFEX_PUBLIC_KEY: 'qfex_pub_visible',
    QFEX_SECRET_KEY: 'qfex_secret_SHOULD_NOT_APPEAR',
    QFEX_JWT: 'jwt-SHOULD-NOT-APPEAR',
  });
  const text = JSON.stringify(describeConfig(config));
  assert.ok(text.includes('qfex_pub_visible'));
  assert.ok(!text.includes('SHOULD_NOT_APPEAR'));
  assert.ok(!text.includes('SHOULD-NOT-APPEAR'));
  assert.match(text, /set \(QFEX_SECRET_KEY\)/);
});
