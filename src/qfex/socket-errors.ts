/**
 * What a WebSocket failure means for tierwatch: socket-level errors ('error' events) and close
 * frames turned into TierwatchErrors with our codes. Pure; used by client.ts.
 */
import { TierwatchError } from '../errors.ts';

/** Node/OpenSSL error codes that mean the peer's certificate or the TLS layer failed. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function errorCodeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Maps a socket-level failure (an 'error' event) to our codes. */
export function classifySocketError(error: unknown, phase: string): TierwatchError {
  const code = errorCodeOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    return new TierwatchError(
      'QFEX_FRAME_TOO_LARGE',
      `the exchange sent a frame larger than the accepted maximum (${detail}); raise TIERWATCH_MAX_FRAME_BYTES if its pages really are that large`,
      { cause: error },
    );
  }
  if (code.startsWith('WS_ERR_')) {
    return new TierwatchError('QFEX_PROTOCOL', `the exchange broke the WebSocket protocol ${phase}: ${detail}`, {
      cause: error,
    });
  }
  if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.startsWith('CERT_')) {
    return new TierwatchError(
      'QFEX_TLS',
      `TLS failed ${phase}: ${detail} (${code}); a private CA can be trusted through QFEX_CA_FILE`,
      {
        cause: error,
        details: { errorCode: code },
      },
    );
  }
  return new TierwatchError(
    'QFEX_CONNECT',
    `the exchange could not be reached ${phase}: ${detail}${code ? ` (${code})` : ''}`,
    {
      cause: error,
      retryable: true,
      details: { errorCode: code || null },
    },
  );
}

export function describeClose(code: number, reason: Buffer): string {
  const text = reason.toString('utf8');
  return `code ${code}${text ? `, reason ${JSON.stringify(text.slice(0, 200))}` : ''}`;
}
