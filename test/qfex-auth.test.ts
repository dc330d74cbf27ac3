import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildAuthMessage, jwtExpiry, newNonce, signHmac } from '../src/qfex/auth.ts';

test('signHmac matches the test vectors in the protocol notes', () => {
  assert.equal(
    signHmac('qfex_secret_yyyyyy', 'c0ffee', 1760545414),
    '222adbb0993646affe345a15f3c5b45e7123d4ff2c38dc4245c81ffb24c66d64',
  );
  assert.equal(
    signHmac('qfex_secret_yyyyyy', '00112233445566778899aabbccddeeff', 1760545414),
    '4b2447002bae930f69b2da9bde697d9baa0bc6bdefc63820ec3a393ce646b66d',
  );
});

test('newNonce is 32 lowercase hex characters from 16 bytes of the given source', () => {
  const fixed = newNonce((n) => Buffer.from(Array.from({ length: n }, (_, i) => i * 17)));
  assert.equal(fixed, '00112233445566778899aabbccddeeff');
  const a = newNonce();
  const b = newNonce();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(a, b);
});

test('HMAC auth message for the primary account sends no account_id', () => {
  const message = buildAuthMessage(
    { kind: 'hmac', publicKey: 'qfex_pub_xxxxx', secretKey: 'qfex_secret_yyyyyy' },
    { nowMs: 1760545414_999, nonce: 'c0ffee' },
  );
  assert.deepEqual(message, {
    type: 'auth',
    params: {
      hmac: {
        public_key: 'qfex_pub_xxxxx',
        nonce: 'c0ffee',
        unix_ts: 1760545414,
        signature: '222adbb0993646affe345a15f3c5b45e7123d4ff2c38dc4245c81ffb24c66d64',
      },
    },
  });
  assert.ok(!JSON.stringify(message).includes('qfex_secret_yyyyyy'));
});

test('HMAC auth message for a subaccount carries account_id beside hmac', () => {
  const message = buildAuthMessage(
    { kind: 'hmac', publicKey: 'pk', secretKey: 'sk' },
    { nowMs: 1_000_000, nonce: 'ab', accountId: '11111111-1111-1111-1111-111111111111' },
  ) as { params: Record<string, unknown> };
  assert.equal(message.params.account_id, '11111111-1111-1111-1111-111111111111');
  assert.deepEqual(Object.keys(message.params).sort(), ['account_id', 'hmac']);
});

test('JWT auth message', () => {
  assert.deepEqual(buildAuthMessage({ kind: 'jwt', token: 'a.b.c' }, { nowMs: 0, nonce: 'ff' }), {
    type: 'auth',
    params: { jwt: 'a.b.c' },
  });
  assert.deepEqual(
    buildAuthMessage({ kind: 'jwt', token: 'a.b.c', publicKey: 'pk' }, { nowMs: 0, nonce: 'ff', accountId: 'sub' }),
    {
      type: 'auth',
      params: { jwt: 'a.b.c', account_id: 'sub' },
    },
  );
});

function makeJwt(payload: unknown): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'ES256', typ: 'JWT' })}.${encode(payload)}.c2lnbmF0dXJl`;
}

test('jwtExpiry reads exp and never throws', () => {
  assert.equal(jwtExpiry(makeJwt({ exp: 1760545414 }))?.toISOString(), '2025-10-15T16:23:34.000Z');
  assert.equal(jwtExpiry(makeJwt({ sub: 'x' })), null);
  assert.equal(jwtExpiry(makeJwt({ exp: 'soon' })), null);
  assert.equal(jwtExpiry(makeJwt([1, 2])), null);
  assert.equal(jwtExpiry(makeJwt({ exp: 1e300 })), null);
  assert.equal(jwtExpiry('not-a-jwt'), null);
  assert.equal(jwtExpiry('a.%%%.c'), null);
  assert.equal(jwtExpiry(''), null);
});
