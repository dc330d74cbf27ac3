/**
 * The Redactor on its own (the CLI-level proof is in secrets-exposure.test.ts): every form of
 * every secret is scrubbed, frames stay valid JSON, errors keep their code, log lines are scrubbed,
 * and the transcript's auth frame loses its credentials.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildAuthMessage } from '../src/qfex/auth.ts';
import { Redactor, REDACTED, redactingLogger, secretForms } from '../src/qfex/redact.ts';
import { redactAuthFrame } from '../src/qfex/transcript.ts';
import { TierwatchError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { LogCapture } from './helpers/harness.ts';

const SECRET = 'qfex_secret_"quoted"\\slash';
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.SIGNATUREPART123456';
const NONCE = '00112233445566778899aabbccddeeff';
const AUTH = JSON.stringify(
  buildAuthMessage(
    { kind: 'hmac', publicKey: 'qfex_pub_x', secretKey: SECRET },
    { nowMs: 1_760_545_414_000, nonce: NONCE },
  ),
);
const SIGNATURE = (JSON.parse(AUTH) as { params: { hmac: { signature: string } } }).params.hmac.signature;

function hmacRedactor(): Redactor {
  const redactor = Redactor.forCredentials({ kind: 'hmac', publicKey: 'qfex_pub_x', secretKey: SECRET });
  redactor.learnSentAuthFrame(AUTH);
  return redactor;
}

test('every form of the secret key, signature, nonce and auth frame is scrubbed', () => {
  const redactor = hmacRedactor();
  for (const secret of [SECRET, SIGNATURE, NONCE, AUTH]) {
    const bytes = Buffer.from(secret, 'utf8');
    for (const form of [
      secret,
      JSON.stringify(secret),
      JSON.stringify(JSON.stringify(secret)),
      bytes.toString('base64'),
      bytes.toString('base64url'),
      bytes.toString('hex'),
      bytes.toString('hex').toUpperCase(),
    ]) {
      const scrubbed = redactor.scrub(`echo: ${form} (end)`);
      for (const leaked of secretForms(secret)) {
        assert.ok(
          !scrubbed.includes(leaked),
          `${secret.slice(0, 20)} as ${form.slice(0, 20)}: ${scrubbed.slice(0, 120)}`,
        );
      }
      assert.ok(scrubbed.includes(REDACTED));
    }
  }
  assert.equal(redactor.scrub(SIGNATURE.toUpperCase()), REDACTED, 'hex in either case');
  const clean = 'nothing secret here';
  assert.equal(redactor.scrub(clean), clean);
});

test('a JWT and each of its three parts are scrubbed', () => {
  const redactor = Redactor.forCredentials({ kind: 'jwt', token: JWT });
  for (const part of [JWT, ...JWT.split('.')]) assert.equal(redactor.scrub(part), REDACTED, part);
});

test('scrubFrame keeps a frame valid JSON when it quotes the auth message as a value, and sees through \\u escapes', () => {
  const redactor = hmacRedactor();
  const echoed = JSON.stringify({
    err: { error_code: 'PermissionDenied', message: `bad auth ${AUTH}`, incoming_message: JSON.parse(AUTH) as unknown },
  });
  const scrubbed = redactor.scrubFrame(echoed);
  const parsed = JSON.parse(scrubbed) as {
    err: {
      error_code: string;
      message: string;
      incoming_message: { params: { hmac: { signature: string; nonce: string } } };
    };
  };
  assert.equal(parsed.err.error_code, 'PermissionDenied');
  assert.equal(parsed.err.message, `bad auth ${REDACTED}`);
  assert.equal(parsed.err.incoming_message.params.hmac.signature, REDACTED);
  assert.equal(parsed.err.incoming_message.params.hmac.nonce, REDACTED);
  const escaped = `{"err":{"error_code":"X","message":"${[...SIGNATURE].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"}}`;
  assert.equal((JSON.parse(redactor.scrubFrame(escaped)) as { err: { message: string } }).err.message, REDACTED);
  const page = '{"available_leverage_levels_response":[{"symbol":"META-USD","initial_margin":1.0}]}';
  assert.equal(redactor.scrubFrame(page), page, 'a clean frame is returned as it came, number spellings included');
});

test('scrubError keeps the code and retryability, scrubs message, details and causes, and returns a clean error as is', () => {
  const redactor = hmacRedactor();
  const cause = new SyntaxError(`Unexpected token in ${SIGNATURE}`);
  const error = new TierwatchError('QFEX_RATE_LIMITED', `answered ${AUTH}`, {
    retryable: true,
    cause,
    details: { exchangeMessage: `nonce ${NONCE}`, retryAfterMs: 5 },
  });
  const scrubbed = redactor.scrubError(error);
  assert.ok(scrubbed instanceof TierwatchError);
  assert.equal(scrubbed.code, 'QFEX_RATE_LIMITED');
  assert.equal(scrubbed.retryable, true);
  assert.equal(scrubbed.message, `answered ${REDACTED}`);
  assert.deepEqual(scrubbed.details, { exchangeMessage: `nonce ${REDACTED}`, retryAfterMs: 5 });
  assert.equal((scrubbed.cause as Error).message, `Unexpected token in ${REDACTED}`);
  assert.equal((scrubbed.cause as Error).name, 'SyntaxError');
  assert.ok(!String(scrubbed.stack).includes(SIGNATURE));
  const clean = new TierwatchError('QFEX_TIMEOUT', 'no page');
  assert.equal(redactor.scrubError(clean), clean);
});

test('a redacting logger scrubs messages, fields, errors and child bindings, including secrets learnt after it was made', () => {
  const capture = new LogCapture();
  const redactor = Redactor.forCredentials({ kind: 'hmac', publicKey: 'qfex_pub_x', secretKey: SECRET });
  const log = redactingLogger(createLogger({ level: 'debug', destination: capture }), redactor);
  redactor.learnSentAuthFrame(AUTH);
  log
    .child({ quoted: SIGNATURE })
    .warn({ exchangeMessage: `echo ${AUTH}`, err: new Error(`nonce ${NONCE}`) }, `message with ${SECRET}`);
  log.trace({ never: 'written' }, 'below the level');
  assert.equal(capture.lines.length, 1);
  const text = capture.text();
  for (const secret of [SECRET, SIGNATURE, NONCE, AUTH]) {
    for (const form of secretForms(secret)) assert.ok(!text.includes(form), form);
  }
  assert.equal(capture.lines[0]!.quoted, REDACTED);
  assert.equal(capture.lines[0]!.msg, `message with ${REDACTED}`);
});

test('the transcript writes the auth frame with its public key, nonce, signature and JWT replaced', () => {
  const hmac = JSON.parse(redactAuthFrame(AUTH)) as { params: { hmac: Record<string, unknown> } };
  assert.deepEqual(hmac.params.hmac, {
    public_key: REDACTED,
    nonce: REDACTED,
    unix_ts: 1_760_545_414,
    signature: REDACTED,
  });
  const jwt = JSON.parse(redactAuthFrame(JSON.stringify({ type: 'auth', params: { jwt: JWT, account_id: 'a' } }))) as {
    params: Record<string, unknown>;
  };
  assert.deepEqual(jwt.params, { jwt: REDACTED, account_id: 'a' });
  const page = '{"type":"get_available_leverage_levels","params":{"limit":10,"offset":0}}';
  assert.equal(redactAuthFrame(page), page);
});
