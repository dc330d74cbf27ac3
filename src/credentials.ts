/**
 * The secrets themselves, read when they are needed and never kept: the QFEX credentials for one
 * sweep and the webhook signing key. A `*_FILE` is re-read every time, so keys rotate without a
 * restart; config.ts holds only where each secret comes from.
 */
import { readBoundedFile, SECRET_FILE_MAX_BYTES } from './config-file.ts';
import type { Config, SecretSource } from './config.ts';
import { TierwatchError } from './errors.ts';
import type { Credentials } from './qfex/auth.ts';

export function requireCredentials(config: Config): void {
  if (config.secretKey !== null && config.publicKey === null) {
    throw new TierwatchError('CONFIG_INVALID', '`QFEX_PUBLIC_KEY` is not set; it is needed with `QFEX_SECRET_KEY`.');
  }
  if (config.secretKey === null && config.jwt === null) {
    throw new TierwatchError(
      'CONFIG_INVALID',
      'No credentials: set `QFEX_PUBLIC_KEY` with `QFEX_SECRET_KEY` (or `QFEX_SECRET_KEY_FILE`), or `QFEX_JWT` (or `QFEX_JWT_FILE`).',
    );
  }
}

function readSecretValue(source: SecretSource): string {
  if (source.from === 'env') return source.value;
  const text = readBoundedFile(source.variable, source.path, SECRET_FILE_MAX_BYTES);
  const value = text.trim();
  if (value === '') {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `\`${source.variable}\` names ${JSON.stringify(source.path)}, which is empty.`,
    );
  }
  return value;
}

/**
 * The credentials for one sweep, read now (files are re-read every time). HMAC is preferred when
 * both an HMAC key pair and a JWT are configured, as QFEX recommends.
 */
export function resolveCredentials(config: Config): Credentials {
  requireCredentials(config);
  if (config.secretKey !== null && config.publicKey !== null) {
    return { kind: 'hmac', publicKey: config.publicKey, secretKey: readSecretValue(config.secretKey) };
  }
  const token = readSecretValue(config.jwt!);
  return config.publicKey === null ? { kind: 'jwt', token } : { kind: 'jwt', token, publicKey: config.publicKey };
}

/**
 * requireCredentials, then reads every secret file once, now, and forgets what it read: a missing,
 * empty, oversized or not-regular `*_FILE` is a configuration error (exit 2) at start, not a failed
 * run (exit 1) later. Later sweeps re-read the files, so keys still rotate without a restart.
 */
export function checkSecretFiles(config: Config): void {
  requireCredentials(config);
  resolveCredentials(config);
  resolveWebhookSecret(config);
}

/** The webhook signing key, read now (a file is re-read every time), or null when none is set. */
export function resolveWebhookSecret(config: Config): string | null {
  return config.alerts.secret === null ? null : readSecretValue(config.alerts.secret);
}
