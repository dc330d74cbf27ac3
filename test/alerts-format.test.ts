/**
 * The pure parts of alerting: classification, filters, the Slack text, the signature recipe, and
 * the configuration of alerts (URLs, formats, secrets never shown).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyChange } from '../src/alerts/classify.ts';
import {
  changesNotification,
  classifiedChanges,
  renderBody,
  selectChanges,
  slackText,
  SLACK_MAX_LINES,
  type ClassifiedChange,
} from '../src/alerts/payload.ts';
import { signBody, verifySignature } from '../src/alerts/signature.ts';
import { describeConfig, loadConfig, redactUrl, resolveWebhookSecret } from '../src/config.ts';
import type { ChangeRecord } from '../src/store/history-store.ts';

function record(
  symbol: string,
  change: ChangeRecord['change'],
  old: [number, number, number] | null,
  now: [number, number, number] | null,
  leverage = '20',
): ChangeRecord {
  const columns = (['initial_margin', 'maintenance_margin', 'max_notional'] as const).filter(
    (_, i) => old !== null && now !== null && old[i] !== now[i],
  );
  return {
    run_id: 7,
    observed_at: '2026-03-01T12:00:00.000Z',
    account_id: 'primary',
    symbol,
    leverage,
    change,
    changed_columns: change === 'changed' ? [...columns] : [],
    old_initial_margin: old?.[0] ?? null,
    new_initial_margin: now?.[0] ?? null,
    old_maintenance_margin: old?.[1] ?? null,
    new_maintenance_margin: now?.[1] ?? null,
    old_max_notional: old?.[2] ?? null,
    new_max_notional: now?.[2] ?? null,
  };
}

const CASES: Array<[string, ChangeRecord, string]> = [
  ['max notional down', record('META-USD', 'changed', [0.05, 0.025, 100_000], [0.05, 0.025, 50_000]), 'tightening'],
  ['initial margin up', record('A-USD', 'changed', [0.05, 0.025, 100_000], [0.1, 0.025, 100_000]), 'tightening'],
  ['maintenance margin up', record('B-USD', 'changed', [0.05, 0.025, 100_000], [0.05, 0.03, 100_000]), 'tightening'],
  ['tier removed', record('C-USD', 'removed', [0.05, 0.025, 100_000], null), 'tightening'],
  ['max notional up', record('D-USD', 'changed', [0.05, 0.025, 100_000], [0.05, 0.025, 200_000]), 'loosening'],
  ['margins down', record('E-USD', 'changed', [0.05, 0.025, 100_000], [0.04, 0.02, 100_000]), 'loosening'],
  ['tier added', record('F-USD', 'added', null, [0.05, 0.025, 100_000]), 'loosening'],
  ['margin up, notional up', record('G-USD', 'changed', [0.05, 0.025, 100_000], [0.1, 0.025, 200_000]), 'mixed'],
];

test('classification: margin up, notional down or removal tighten; the reverse or an addition loosen; both is mixed', () => {
  for (const [name, change, expected] of CASES) {
    const [classified] = classifiedChanges([change]);
    assert.equal(classified!.classification, expected, name);
    assert.equal(classifyChange(classified!), expected, name);
  }
});

test('filters: symbol patterns with `*` as --symbol, and tightening-only keeps tightening and mixed', () => {
  const all = classifiedChanges(CASES.map(([, change]) => change));
  const symbols = (changes: ClassifiedChange[]) => changes.map((change) => change.symbol);
  assert.deepEqual(symbols(selectChanges(all, { symbols: [], only: null })), symbols(all));
  assert.deepEqual(symbols(selectChanges(all, { symbols: ['META-USD', 'G-*'], only: null })), ['META-USD', 'G-USD']);
  assert.deepEqual(
    symbols(selectChanges(all, { symbols: ['*-US'], only: null })),
    [],
    'a pattern matches the whole symbol',
  );
  assert.deepEqual(symbols(selectChanges(all, { symbols: [], only: 'tightening' })), [
    'META-USD',
    'A-USD',
    'B-USD',
    'C-USD',
    'G-USD',
  ]);
  assert.deepEqual(
    symbols(selectChanges(all, { symbols: ['?-USD'], only: null })),
    [],
    '`?` is literal, as in --symbol',
  );
  assert.equal(
    changesNotification('id-1', { runId: 7, accountId: 'primary', observedAt: 'x' }, []),
    null,
    'nothing left: nothing to send',
  );
});

test('the Slack format is one {"text"} line per change, readable: symbol, leverage, old → new, relative move', () => {
  const changes = classifiedChanges([CASES[0]![1], CASES[6]![1], CASES[3]![1]]);
  const notification = changesNotification(
    'id-1',
    { runId: 7, accountId: 'primary', observedAt: '2026-03-01T12:00:00.000Z' },
    changes,
  )!;
  const body = JSON.parse(renderBody(notification, 'slack'));
  assert.deepEqual(Object.keys(body), ['text']);
  assert.equal(
    body.text,
    [
      'tierwatch: 3 tier changes on account primary (2 tightening, 1 loosening) — run 7, observed 2026-03-01T12:00:00.000Z',
      '• [tightening] META-USD 20x changed: max_notional 100,000 → 50,000 (−50.0%)',
      '• [loosening] F-USD 20x added: initial_margin 0.05, maintenance_margin 0.025, max_notional 100,000',
      '• [tightening] C-USD 20x removed (was initial_margin 0.05, maintenance_margin 0.025, max_notional 100,000)',
    ].join('\n'),
  );
  const many = classifiedChanges(
    Array.from({ length: SLACK_MAX_LINES + 5 }, (_, i) => record(`S${i}-USD`, 'added', null, [0.1, 0.05, 1000])),
  );
  const long = slackText(
    changesNotification('id-2', { runId: 9, accountId: 'sub-1', observedAt: '2026-03-01T12:00:00.000Z' }, many)!,
  );
  assert.equal(long.split('\n').length, 1 + SLACK_MAX_LINES + 1);
  assert.match(
    long,
    /…and 5 more: tierwatch changes --since 2026-03-01T12:00:00\.000Z --until 2026-03-01T12:00:00\.001Z --account sub-1$/,
  );
  assert.match(
    slackText({
      id: 's',
      type: 'stale',
      at: 'x',
      last_success_at: null,
      threshold_seconds: 600,
      reason: 'account primary: no successful sweep',
    }),
    /^tierwatch: collection is STALE — account primary: no successful sweep\. No successful sweep within 600 s/,
  );
  assert.equal(
    slackText({ id: 'r', type: 'recovered', at: 'x', last_success_at: 'T2', stale_since: 'T1' }),
    'tierwatch: collection RECOVERED — successful sweep at T2 (stale since T1).',
  );
});

test('the JSON format is the notification document itself', () => {
  const notification = changesNotification(
    'id-1',
    { runId: 7, accountId: 'primary', observedAt: '2026-03-01T12:00:00.000Z' },
    classifiedChanges([CASES[0]![1]]),
  )!;
  const body = JSON.parse(renderBody(notification, 'json'));
  assert.deepEqual(Object.keys(body), [
    'id',
    'type',
    'run',
    'summary',
    'kinds',
    'total',
    'omitted',
    'all_changes',
    'changes',
  ]);
  assert.deepEqual(Object.keys(body.changes[0]), [
    'run_id',
    'observed_at',
    'account_id',
    'symbol',
    'leverage',
    'change',
    'changed_columns',
    'before',
    'after',
    'classification',
  ]);
});

test('signature recipe: sha256= hex HMAC of "<timestamp>.<body>"; verification refuses a changed body, a wrong key and an old timestamp', () => {
  const body = '{"id":"n-1","type":"changes"}';
  const expected = `sha256=${createHmac('sha256', 'k3y').update(`1772366400.${body}`).digest('hex')}`;
  assert.equal(signBody('k3y', '1772366400', body), expected);
  assert.equal(verifySignature('k3y', '1772366400', body, expected, { nowSeconds: 1772366400 + 10 }), true);
  assert.equal(verifySignature('k3y', '1772366400', `${body} `, expected, { nowSeconds: 1772366400 }), false);
  assert.equal(verifySignature('other', '1772366400', body, expected, { nowSeconds: 1772366400 }), false);
  assert.equal(verifySignature('k3y', '1772366400', body, expected, { nowSeconds: 1772366400 + 3600 }), false);
  assert.equal(verifySignature('k3y', '1772366400', body, 'sha256=00', { nowSeconds: 1772366400 }), false);
});

test('configuration: webhook URLs must be http(s) without credentials; format and filter values are checked; the secret is only ever described', () => {
  const config = loadConfig({
    TIERWATCH_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/tok3n, http://127.0.0.1:9000/hook',
    TIERWATCH_WEBHOOK_FORMAT: 'slack',
    TIERWATCH_ALERT_SYMBOLS: 'META-USD, *-EUR',
    TIERWATCH_ALERT_ONLY: 'tightening',
    TIERWATCH_WEBHOOK_SECRET: 'whsec-very-secret',
    TIERWATCH_WEBHOOK_TIMEOUT: '2s',
    TIERWATCH_WEBHOOK_RETRIES: '5',
  });
  assert.deepEqual(config.alerts.webhookUrls, [
    'https://hooks.slack.com/services/T0/B0/tok3n',
    'http://127.0.0.1:9000/hook',
  ]);
  assert.equal(config.alerts.format, 'slack');
  assert.deepEqual(config.alerts.symbols, ['META-USD', '*-EUR']);
  assert.equal(config.alerts.only, 'tightening');
  assert.equal(config.alerts.timeoutMs, 2000);
  assert.equal(config.alerts.retries, 5);
  assert.equal(resolveWebhookSecret(config), 'whsec-very-secret');
  const described = JSON.stringify(describeConfig(config));
  assert.ok(!described.includes('whsec-very-secret'));
  assert.ok(!described.includes('tok3n'), 'a webhook path can be a credential');
  assert.match(described, /"secret":"set \(TIERWATCH_WEBHOOK_SECRET\)"/);
  assert.match(described, /https:\/\/hooks\.slack\.com\/…/);

  assert.throws(
    () => loadConfig({ TIERWATCH_WEBHOOK_URL: 'ftp://example.com/x' }),
    (error: Error) => /TIERWATCH_WEBHOOK_URL/.test(error.message) && !error.message.includes('/x'),
  );
  assert.throws(
    () => loadConfig({ TIERWATCH_WEBHOOK_URL: 'https://user:pw@example.com/' }),
    /must not carry credentials/,
  );
  assert.throws(() => loadConfig({ TIERWATCH_WEBHOOK_FORMAT: 'xml' }), /TIERWATCH_WEBHOOK_FORMAT/);
  assert.throws(
    () => loadConfig({ TIERWATCH_WEBHOOK_URL: 'https://a.test/x,https://a.test/x' }),
    /lists https:\/\/a\.test\/… twice/,
  );
  assert.throws(() => loadConfig({ TIERWATCH_ALERT_ONLY: 'loosening' }), /TIERWATCH_ALERT_ONLY/);
  assert.throws(() => loadConfig({ TIERWATCH_WEBHOOK_SECRET: 'a', TIERWATCH_WEBHOOK_SECRET_FILE: '/x' }), /either/);
  assert.equal(loadConfig({}).alerts.webhookUrls.length, 0);
  assert.equal(redactUrl('https://example.com'), 'https://example.com/');

  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-alerts-config-'));
  try {
    const file = join(dir, 'secret');
    writeFileSync(file, 'from-file-1\n');
    const fromFile = loadConfig({ TIERWATCH_WEBHOOK_SECRET_FILE: file });
    assert.equal(resolveWebhookSecret(fromFile), 'from-file-1');
    writeFileSync(file, 'from-file-2\n');
    assert.equal(resolveWebhookSecret(fromFile), 'from-file-2', 'the file is re-read: rotation needs no restart');
    assert.ok(!JSON.stringify(describeConfig(fromFile)).includes('from-file'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
