/**
 * Unknown TIERWATCH_* / QFEX_* environment variables. A typo such as TIERWATCH_SCHEDUEL used to be
 * ignored in silence, so the daemon ran on the default schedule; now each one is reported with the
 * nearest known name. Pure: the caller says which names the configuration read.
 */

/** The prefixes that are ours: any other variable is none of our business. */
const PREFIXES = ['TIERWATCH_', 'QFEX_'];

/**
 * Names read outside loadConfig: the web view's token (web/auth.ts reads it when the view is
 * served, by `tierwatch serve` or on the daemon's HTTP port), the test-only crash hook, and the variables of the repository's
 * own scripts (soak, benchmarks, container build), which may be in a tierwatch process's environment.
 */
const ALSO_KNOWN = [
  'TIERWATCH_HTTP_TOKEN',
  'TIERWATCH_HTTP_TOKEN_FILE',
  'TIERWATCH_TEST_CRASH_AT',
  'TIERWATCH_CRASH_SEED',
  'TIERWATCH_CRASH_ROUNDS',
  'TIERWATCH_FAILOVER_SEED',
  'TIERWATCH_FAILOVER_FAULTS',
  'TIERWATCH_TEST_CLI',
  'TIERWATCH_BENCH_MAXRSS_KB',
  'TIERWATCH_IMAGE',
  'TIERWATCH_BASE_IMAGE',
  'TIERWATCH_CACHE_DIR',
];

export interface UnknownVariable {
  variable: string;
  /** The nearest known name, or null when none is near enough to be a likely typo. */
  suggestion: string | null;
}

/** The unknown variables among `names`, sorted, each with its nearest known name. */
export function unknownVariables(names: Iterable<string>, known: ReadonlySet<string>): UnknownVariable[] {
  const all = new Set([...known, ...ALSO_KNOWN]);
  const candidates = [...all].filter((name) => PREFIXES.some((prefix) => name.startsWith(prefix)));
  const unknown: UnknownVariable[] = [];
  for (const variable of [...names].sort()) {
    if (!PREFIXES.some((prefix) => variable.startsWith(prefix)) || all.has(variable)) continue;
    unknown.push({ variable, suggestion: nearest(variable, candidates) });
  }
  return unknown;
}

/** The one-line warning for an unknown variable. */
export function describeUnknown({ variable, suggestion }: UnknownVariable): string {
  return suggestion === null
    ? `${variable} is not a tierwatch setting and is ignored`
    : `${variable} is not a tierwatch setting and is ignored; did you mean ${suggestion}?`;
}

function nearest(name: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance || (distance === bestDistance && best !== null && candidate < best)) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Near enough to be a slip of the fingers: a few edits, and never most of the name.
  const limit = Math.max(2, Math.floor(name.length / 5));
  return bestDistance <= limit ? best : null;
}

/** Edit distance counting a swap of two neighbours as one edit (SCHEDUEL → SCHEDULE is 1). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i += 1) {
    for (let j = 1; j < cols; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = value;
    }
  }
  return d[a.length]![b.length]!;
}
