import type { RawData } from 'ws';

/**
 * A received frame's payload as text. ws hands a message over as a Buffer, an ArrayBuffer or the
 * Buffers of a fragmented message, depending on `binaryType` and fragmentation; all three read here.
 */
export function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
