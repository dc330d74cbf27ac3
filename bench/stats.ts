/**
 * Small measuring helpers for the benchmark: a monotonic clock, order statistics, and the
 * "figure beside its baseline" shape every target is reported in.
 */

/** Milliseconds from a monotonic clock. */
export function nowMs(): number {
  return performance.now();
}

/** Median of a non-empty sample (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty sample');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Nearest-rank percentile (p in (0, 100]) of a non-empty sample. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of an empty sample');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** Rounds for the JSON output: three significant decimals are plenty for noisy timings. */
export function round(value: number, decimals = 3): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

/**
 * A target and how the figure stands against it and against the baseline measured in the same run.
 * `ratio_to_baseline` = value / baseline; `met` says whether every bound held.
 */
export interface TargetCheck {
  target: string;
  value: number;
  unit: string;
  baseline: number;
  baseline_name: string;
  ratio_to_baseline: number;
  /** Absolute bound on the value (e.g. 500 ms), if the target has one. */
  limit: number | null;
  /** Bound on the ratio to the baseline (e.g. ≤ 2× the floor, ≥ 100× smaller), if the target has one. */
  ratio_limit: { max?: number; min?: number } | null;
  met: boolean;
}

/** Builds a TargetCheck: value ≤ limit (when given) and the ratio within ratio_limit (when given). */
export function checkTarget(input: {
  target: string;
  value: number;
  unit: string;
  baseline: number;
  baselineName: string;
  limit?: number;
  ratioLimit?: { max?: number; min?: number };
  /** For "smaller is better by at least N×" targets the ratio is baseline / value. */
  ratioIsBaselineOverValue?: boolean;
}): TargetCheck {
  const ratio = input.ratioIsBaselineOverValue ? input.baseline / input.value : input.value / input.baseline;
  let met = true;
  if (input.limit !== undefined && !(input.value <= input.limit)) met = false;
  if (input.ratioLimit?.max !== undefined && !(ratio <= input.ratioLimit.max)) met = false;
  if (input.ratioLimit?.min !== undefined && !(ratio >= input.ratioLimit.min)) met = false;
  return {
    target: input.target,
    value: round(input.value),
    unit: input.unit,
    baseline: round(input.baseline),
    baseline_name: input.baselineName,
    ratio_to_baseline: round(ratio, 2),
    limit: input.limit ?? null,
    ratio_limit: input.ratioLimit ?? null,
    met,
  };
}

/** Times `fn` `runs` times after `warmup` untimed calls; returns every sample in ms. */
export function sampleSync(fn: () => void, runs: number, warmup = 1): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = nowMs();
    fn();
    samples.push(nowMs() - start);
  }
  return samples;
}

/** Throws when a measured answer has the wrong size: an empty answer is not fast, it is wrong. */
export function assertSize(what: string, actual: number, expected: number): void {
  if (actual !== expected) {
    throw new Error(`benchmark answer check failed: ${what} returned ${actual} rows, expected ${expected}`);
  }
}
