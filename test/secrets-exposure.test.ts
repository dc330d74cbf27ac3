/**
 * Secrets never leak. With recognisable credentials — a secret key (with a character JSON must
 * escape), a JWT whose signature part is a marker, and the HMAC signatures the client really sent
 * (captured by a recording proxy between the client and the simulator) — every command runs, in
 * process and as child processes, through success, failing auth in every mode (including the
 * `err_frame` mode whose error frame echoes the whole auth message back) and a set of faults.
 * A server that quotes the auth message in its error messages (the `echo` fault, in every encoding,
 * at auth and at a page) goes into `check` output, logs, `runs.error_message` and `tierwatch runs`;
 * `check --record` writes transcripts. Then all stdout, stderr and log output, the transcripts, the
 * database file, its WAL (read while a daemon writes) and the lock file are searched for each
 * secret (the secret key, the JWT and each of its parts, every signature, nonce and auth message
 * sent), raw, JSON-escaped, base64, base64url and hex.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../src/commands/index.ts';
import { AUTH_FAILURE_MODES, ECHO_ENCODINGS, type Fault } from '../src/sim/index.ts';
import { runCliCaptured, startHarness, type Harness } from './helpers/harness.ts';
import {
  credentialsSent,
  databaseFiles,
  findLeaks,
  secretForms,
  spawnCli,
  startRecordingProxy,
  type RecordingProxy,
} from './helpers/faults.ts';

const PUBLIC_KEY = 'qfex_pub_secrets_test';
const SECRET_KEY = `qfex_secret_SECRETCANARY"${randomBytes(8).toString('hex')}`;
const JWT = [
  Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT' })).toString('base64url'),
  Buffer.from(JSON.stringify({ sub: 'secrets-test', exp: Math.floor(Date.now() / 1000) + 86_400 })).toString(
    'base64url',
  ),
  `JWTSIGCANARY${randomBytes(16).toString('base64url')}`,
].join('.');

let h: Harness;
let proxy: RecordingProxy;
let hmacEnv: Record<string, string>;
let jwtEnv: Record<string, string>;
/** Everything any command printed or logged, and every file snapshot taken along the way. */
const outputs: Record<string, string | Buffer> = {};
let outputCount = 0;

function keep(label: string, content: string | Buffer): void {
  outputs[`${++outputCount} ${label}`] = content;
}

async function cli(label: string, argv: string[], env: Record<string, string>, signal?: AbortSignal): Promise<number> {
  const { code, stdout, stderr, logs } = await runCliCaptured(argv, {
    env,
    ...(signal === undefined ? {} : { signal }),
  });
  keep(`${label} stdout`, stdout);
  keep(`${label} stderr`, stderr);
  keep(`${label} log`, logs.text());
  return code;
}

function keepFiles(label: string): void {
  for (const [path, content] of Object.entries(databaseFiles(h.dbPath))) keep(`${label} ${path}`, content);
}

before(async () => {
  h = await startHarness({ keys: [{ publicKey: PUBLIC_KEY, secretKey: SECRET_KEY }], jwts: [{ token: JWT }] });
  h.db.close();
  proxy = await startRecordingProxy(h.sim.url);
  const common = {
    ...h.env,
    QFEX_WS_URL: proxy.url,
    LOG_LEVEL: 'trace',
    TIERWATCH_PAGE_SIZE: '20',
    // Commands expected to succeed get generous bounds: on a loaded machine a reply through the
    // recording proxy can take longer than a short timeout, and a timeout there is no leak test.
    // The failure test below uses FAULT_TIMEOUTS so that the faults which never answer end soon.
    TIERWATCH_CONNECT_TIMEOUT: '30s',
    TIERWATCH_REQUEST_TIMEOUT: '30s',
    TIERWATCH_AUTH_TIMEOUT: '30s',
  };
  hmacEnv = { ...common, QFEX_PUBLIC_KEY: PUBLIC_KEY, QFEX_SECRET_KEY: SECRET_KEY };
  jwtEnv = { ...common, QFEX_PUBLIC_KEY: '', QFEX_SECRET_KEY: '', QFEX_JWT: JWT };
});

after(async () => {
  await proxy?.close();
  await h?.close();
});

test('help, check, collect and the query commands, in process, with HMAC and with a JWT', async () => {
  assert.equal(await cli('help', ['--help'], hmacEnv), 0);
  for (const spec of COMMANDS) await cli(`${spec.name} --help`, [spec.name, '--help'], { ...hmacEnv, QFEX_JWT: JWT });
  assert.equal(await cli('check hmac', ['check'], hmacEnv), 0);
  assert.equal(await cli('check jwt', ['check'], jwtEnv), 0);
  assert.equal(await cli('collect hmac', ['collect'], hmacEnv), 0);
  h.sim.editTier('primary', 'META-USD', '20', { max_notional: 31337 });
  assert.equal(await cli('collect jwt', ['collect'], jwtEnv), 0);
  for (const argv of [
    ['runs', '--format', 'json'],
    ['changes', '--format', 'csv'],
    ['snapshot', '--format', 'ndjson'],
    ['diff', '2000-01-01T00:00:00Z', '--format', 'json'],
    ['history', 'META-USD', '--format', 'table'],
    ['query', 'SELECT * FROM runs', '--format', 'json'],
    ['health'],
    ['migrate'],
  ]) {
    await cli(argv.join(' '), argv, hmacEnv);
  }
  keepFiles('after the in-process commands');
  assert.ok(credentialsSent(proxy.clientFrames).signatures.length >= 2, 'signatures were captured on the wire');
  assert.ok(credentialsSent(proxy.clientFrames).jwts.includes(JWT));
});

/** Short bounds for the faults that never answer: those runs fail (exit 1) either way. */
const FAULT_TIMEOUTS = { TIERWATCH_REQUEST_TIMEOUT: '300ms', TIERWATCH_AUTH_TIMEOUT: '300ms' };

test('every failing auth mode, and faults, through check and collect', async () => {
  const hmacFault = { ...hmacEnv, ...FAULT_TIMEOUTS };
  const jwtFault = { ...jwtEnv, ...FAULT_TIMEOUTS };
  for (const mode of AUTH_FAILURE_MODES) {
    h.sim.inject({ kind: 'reject_auth', mode });
    assert.equal(
      await cli(`collect reject_auth ${mode}`, ['collect'], { ...hmacFault, TIERWATCH_SWEEP_RETRIES: '0' }),
      1,
      mode,
    );
    h.sim.inject({ kind: 'reject_auth', mode });
    assert.equal(await cli(`check reject_auth ${mode}`, ['check'], hmacFault), 1, mode);
    h.sim.inject({ kind: 'reject_auth', mode });
    assert.equal(await cli(`check jwt reject_auth ${mode}`, ['check'], jwtFault), 1, mode);
  }
  const faults: Fault[] = [
    { kind: 'drop_at_page', page: 2, persistent: true },
    { kind: 'never_answer_page', persistent: true },
    { kind: 'never_answer_auth', persistent: true },
    { kind: 'bad_frame', page: 1, frame: 'non_json' },
    { kind: 'bad_frame', page: 1, frame: 'wrong_shape' },
    {
      kind: 'malformed_row',
      page: 1,
      row: { symbol: 'X-USD', leverage: '2', initial_margin: 'NaN', maintenance_margin: 0.1, max_notional: 1 },
    },
    { kind: 'error_reply', page: 1, code: 'InvalidParameter' },
    { kind: 'error_reply', code: 'RateLimited', retryAfterMs: 1, persistent: true },
    { kind: 'empty_list' },
  ];
  for (const fault of faults) {
    h.sim.inject(fault);
    const code = await cli(`collect ${fault.kind}`, ['collect'], {
      ...hmacFault,
      TIERWATCH_SWEEP_RETRIES: '1',
      TIERWATCH_PAGE_RETRIES: '1',
    });
    h.sim.clearFaults();
    assert.equal(code, 1, fault.kind);
  }
  keepFiles('after the failures');
});

test('child processes: --help, collect, check in err_frame mode, and a daemon whose WAL is read while it runs', async () => {
  const help = spawnCli(['--help'], { ...hmacEnv, QFEX_JWT: JWT });
  assert.equal(await help.exited, 0);
  assert.match(help.stdout(), /Usage: tierwatch/);
  keep('child --help stdout', help.stdout());
  keep('child --help stderr', help.stderr());

  const collect = spawnCli(['collect'], hmacEnv);
  assert.equal(await collect.exited, 0, collect.stderr());
  keep('child collect stdout', collect.stdout());
  keep('child collect stderr', collect.stderr());

  h.sim.inject({ kind: 'reject_auth', mode: 'err_frame' });
  const check = spawnCli(['check'], hmacEnv);
  assert.equal(await check.exited, 1);
  keep('child check stdout', check.stdout());
  keep('child check stderr', check.stderr());
  assert.match(check.stdout(), /PermissionDenied/);

  h.sim.editTier('primary', 'AAPL-USD', '2', { max_notional: 4321 });
  const daemon = spawnCli(['run'], { ...jwtEnv, TIERWATCH_SCHEDULE: '0 0 1 1 *' });
  await daemon.waitFor(/"msg":"sweep ok/);
  keepFiles('while the daemon runs');
  assert.ok(
    Object.keys(outputs).some((key) => key.endsWith('-wal') && key.includes('while the daemon runs')),
    'the WAL was read while it held the sweep',
  );
  daemon.child.kill('SIGTERM');
  assert.equal(await daemon.exited, 0, daemon.stderr());
  keep('child run stdout', daemon.stdout());
  keep('child run stderr', daemon.stderr());
  keepFiles('after the daemon');
});

test('a server that quotes the auth message in its errors, in every encoding, at auth and at a page: check, collect, runs', async () => {
  const label = (argv: string[]) => argv.join(' ');
  for (const at of ['auth', 'page'] as const) {
    for (const encoding of ECHO_ENCODINGS) {
      for (const [method, env] of [
        ['hmac', hmacEnv],
        ['jwt', jwtEnv],
      ] as const) {
        h.sim.inject({ kind: 'echo', at, encoding });
        const check = await runCliCaptured(['check'], { env });
        keep(`check echo ${at} ${encoding} ${method} stdout`, check.stdout);
        keep(`check echo ${at} ${encoding} ${method} log`, check.logs.text());
        assert.equal(check.code, 1, check.stdout);
        // The echo reached the message, and what it quoted was scrubbed.
        assert.match(check.stdout, /\[redacted\]/, `${at} ${encoding} ${method}: ${check.stdout}`);
        h.sim.inject({ kind: 'echo', at, encoding });
        assert.equal(
          await cli(`collect echo ${at} ${encoding} ${method}`, ['collect'], { ...env, TIERWATCH_SWEEP_RETRIES: '0' }),
          1,
        );
      }
    }
  }
  for (const argv of [
    ['runs', '--failed', '--format', 'json'],
    ['runs', '--failed', '--format', 'table'],
    ['runs', '--failed', '--format', 'csv'],
  ]) {
    assert.equal(await cli(label(argv), argv, hmacEnv), 0);
  }
  const runs = await runCliCaptured(['runs', '--failed', '--last', '20', '--format', 'json'], { env: hmacEnv });
  const messages = (JSON.parse(runs.stdout) as Array<{ error_message: string | null }>).map(
    (run) => run.error_message ?? '',
  );
  assert.ok(messages.filter((message) => message.includes('[redacted]')).length >= 20, messages.join('\n'));
  keepFiles('after the echoes');
});

test('check --record writes transcripts with every credential removed, even when the server echoes them', async () => {
  const hmacFile = join(h.dir, 'hmac.transcript.jsonl');
  assert.equal(await cli('check --record hmac', ['check', '--record', hmacFile], hmacEnv), 0);
  const jwtFile = join(h.dir, 'jwt.transcript.jsonl');
  h.sim.inject({ kind: 'echo', at: 'page', page: 2, encoding: 'raw' });
  assert.equal(await cli('check --record jwt echo', ['check', '--record', jwtFile], jwtEnv), 1);
  for (const file of [hmacFile, jwtFile]) {
    const transcript = readFileSync(file, 'utf8');
    keep(`transcript ${file}`, transcript);
    assert.match(transcript, /\\"type\\":\\"auth\\"/, 'the auth frame is recorded');
    assert.match(transcript, /\[redacted\]/);
    // The public key is no secret, but it identifies the user: a transcript for a bug report leaves it out too.
    assert.ok(!transcript.includes(PUBLIC_KEY), 'no public key in the transcript');
  }
  assert.match(readFileSync(jwtFile, 'utf8'), /refused on the session opened by/, 'the echo was recorded, scrubbed');
});

test('the leak search finds a planted secret in each form', () => {
  const signature = credentialsSent(proxy.clientFrames).signatures[0]!;
  const secrets = { key: SECRET_KEY, jwt: JWT, 'jwt payload': JWT.split('.')[1]!, signature };
  const forms = ['raw', 'json', 'base64', 'base64url', 'hex'] as const;
  for (const [name, secret] of Object.entries(secrets)) {
    const bytes = Buffer.from(secret, 'utf8');
    const planted: Record<(typeof forms)[number], string> = {
      raw: `before ${secret} after`,
      json: JSON.stringify({ quoted: secret }),
      base64: `x${bytes.toString('base64')}x`,
      base64url: `x${bytes.toString('base64url')}x`,
      hex: `x${bytes.toString('hex')}x`,
    };
    for (const form of forms) {
      assert.ok(secretForms(secret).length >= 4, name);
      const found = findLeaks({ [form]: planted[form] }, { [name]: secret });
      assert.ok(
        found.length > 0 && found.every((leak) => leak.startsWith(`${form}: ${name}`)),
        `${name} planted as ${form}: ${found.join('; ')}`,
      );
    }
  }
});

test('no secret, JWT or its parts, signature, nonce or auth message sent appears in any output or file, in any encoding', () => {
  const sent = credentialsSent(proxy.clientFrames);
  assert.ok(sent.signatures.length >= 10, `signatures captured: ${sent.signatures.length}`);
  assert.ok(sent.nonces.length >= 10, `nonces captured: ${sent.nonces.length}`);
  const [header, payload, jwtSignature] = JWT.split('.');
  const secrets: Record<string, string> = {
    QFEX_SECRET_KEY: SECRET_KEY,
    QFEX_JWT: JWT,
    'JWT header': header!,
    'JWT payload': payload!,
    'JWT signature': jwtSignature!,
  };
  sent.signatures.forEach((signature, index) => (secrets[`signature ${index + 1}`] = signature));
  sent.nonces.forEach((nonce, index) => (secrets[`nonce ${index + 1}`] = nonce));
  sent.authFrames.forEach((frame, index) => (secrets[`auth message ${index + 1}`] = frame));
  assert.ok(Object.keys(outputs).length > 50);
  assert.deepEqual(findLeaks(outputs, secrets), []);
});
