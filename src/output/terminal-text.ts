/**
 * Text from the exchange (symbols, error messages, anything a query returns) is data: on a
 * terminal it must never become a command. Control characters are shown as escapes instead of
 * being sent: ESC (cursor moves, screen clears, OSC title changes and OSC 8 hyperlinks all start
 * with it), CR (overwrites the line), NUL, DEL, the C1 controls (U+0080–U+009F: U+009B is a
 * one-character CSI on many terminals), line/paragraph separators, and the bidirectional
 * embeddings, overrides and isolates that can make a line read differently from what it holds.
 */

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNSAFE_TEST = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u0000': '\\0' };

function escapeOne(char: string): string {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`
    : `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `text` with every control character written as a visible escape (`\x1B`, `\r`, `\u202E`). */
export function escapeControl(text: string): string {
  return UNSAFE_TEST.test(text) ? text.replace(UNSAFE, escapeOne) : text;
}

/** Whether `text` holds a character escapeControl would rewrite. */
export function hasControl(text: string): boolean {
  return UNSAFE_TEST.test(text);
}
