/**
 * Reading a file named by a `*_FILE` setting (a secret, a CA bundle) without trusting what is there.
 *
 * Only a regular file is read — a symlink to one is followed, as Kubernetes mounts secrets that way —
 * and never more than a cap: `/dev/zero` would otherwise grow memory without end, and a FIFO would
 * block the whole process in open(2) until some writer appeared. The file is opened non-blocking
 * and checked with fstat on the open descriptor, so what is checked is what is read (no race between
 * a stat and the open), and opening a FIFO returns at once.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { TierwatchError } from './errors.ts';

/** Largest secret file read: a key, a JWT or a signing secret is far below it. */
export const SECRET_FILE_MAX_BYTES = 64 * 1024;
/** Largest certificate-authority file read: room for a full CA bundle. */
export const CA_FILE_MAX_BYTES = 1024 * 1024;

function refuse(variable: string, path: string, why: string, cause?: unknown): TierwatchError {
  return new TierwatchError(
    'CONFIG_INVALID',
    `\`${variable}\` names ${JSON.stringify(path)}, ${why}.`,
    cause === undefined ? {} : { cause },
  );
}

function kindOf(stats: import('node:fs').Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The file's text (UTF-8). Throws CONFIG_INVALID naming `variable` and the path when the file
 * cannot be opened, is not a regular file, or holds more than `maxBytes`. Never blocks on a pipe.
 */
export function readBoundedFile(variable: string, path: string, maxBytes: number): string {
  let fd: number;
  try {
    // O_NONBLOCK: open(2) of a FIFO with no writer would otherwise wait forever.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw refuse(variable, path, `which cannot be read (${reason})`, error);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      throw refuse(variable, path, `which is ${kindOf(stats)}: give a regular file (a symlink to one is fine)`);
    }
    if (stats.size > maxBytes) {
      throw refuse(variable, path, `which holds ${stats.size} bytes, more than the ${maxBytes} allowed`);
    }
    // Read one byte past the cap, so a file that grew after fstat is still caught.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      let read: number;
      try {
        read = readSync(fd, buffer, length, buffer.length - length, null);
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        throw refuse(variable, path, `which cannot be read (${reason})`, error);
      }
      if (read === 0) break;
      length += read;
      if (length > maxBytes) throw refuse(variable, path, `which holds more than the ${maxBytes} bytes allowed`);
    }
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}
