/**
 * Tier changes over time, for the demo and soak runs: every `everyMs` one step is applied to the
 * simulator — either the next of a listed sequence, or a seeded random one (edit a tier's values,
 * remove a tier, list a new symbol, revert to an earlier state). Every step goes through the
 * simulator's mutation API, so it lands in `sim.changeLog`.
 */
import { silentLogger, type Logger } from '../log.ts';
import type { SimChange, TierPatch } from './book.ts';
import { randomInt, seededRandom, type Random } from './random.ts';
import type { Simulator } from './server.ts';
import type { SimTier } from './universe.ts';

export type ScriptStep =
  | { op: 'edit'; account?: string; symbol: string; leverage: string | number; patch: TierPatch }
  | { op: 'remove'; account?: string; symbol: string; leverage: string | number }
  | { op: 'add'; account?: string; tier: SimTier }
  | { op: 'list'; account?: string; symbol: string; levels?: Array<number | string> }
  | { op: 'delist'; account?: string; symbol: string }
  /** Back to the state before the `back`-th latest step (default 1: undo the previous step). */
  | { op: 'revert'; back?: number }
  | { op: 'random' };

export interface ChangeScriptOptions {
  /** Interval between steps in ms. */
  everyMs: number;
  /** Seed of the random steps (default 1); print it to reproduce a run. */
  seed?: number;
  /** Account the random steps change (default 'primary'). */
  account?: string;
  /** A listed sequence instead of random steps; `{op:'random'}` entries mix both. */
  steps?: ScriptStep[];
  /** Start the listed sequence again when it ends (default: stop after the last step). */
  loop?: boolean;
  logger?: Logger;
}

export interface ChangeScript {
  stop(): void;
  /** Applies the next step now (tests call this instead of waiting); returns its changes. */
  step(): SimChange[];
}

/** Symbols a random "listing" draws from before falling back to numbered ones. */
const NEW_SYMBOLS = [
  'NVDA-USD',
  'AMD-USD',
  'INTC-USD',
  'JPM-USD',
  'MSFT-USD',
  'AMZN-USD',
  'NFLX-USD',
  'GOLD-USD',
  'SILVER-USD',
  'GBP-USD',
];

/** The random step: mostly edits, sometimes a removal, a listing or a revert. */
function randomStep(
  sim: Simulator,
  account: string,
  random: Random,
  marks: number[],
  listed: { n: number },
): SimChange[] {
  const tiers = sim.tiers(account);
  const roll = random();
  if (roll < 0.15 && marks.length > 0) {
    const back = 1 + randomInt(random, Math.min(3, marks.length));
    return sim.revertTo(marks[marks.length - back]!);
  }
  if (roll < 0.3) {
    const present = new Set(tiers.map((t) => t.symbol));
    let symbol = NEW_SYMBOLS.find((s) => !present.has(s));
    while (symbol === undefined || present.has(symbol)) symbol = `NEW${++listed.n}-USD`;
    return sim.listSymbol(account, symbol, {
      levels: [1, 2, 3, 5, 10].slice(0, 3 + randomInt(random, 3)),
      baseNotional: 100_000 + randomInt(random, 20) * 10_000,
    });
  }
  if (roll < 0.42 && tiers.length > 10) {
    const victim = tiers[randomInt(random, tiers.length)]!;
    return [sim.removeTier(account, victim.symbol, victim.leverage)];
  }
  if (tiers.length === 0) return sim.listSymbol(account, NEW_SYMBOLS[0]!);
  const target = tiers[randomInt(random, tiers.length)]!;
  if (random() < 0.7) {
    const factor = 0.75 + randomInt(random, 11) * 0.05; // 0.75 … 1.25
    const maxNotional = Math.max(1000, Math.round((target.max_notional * factor) / 1000) * 1000);
    return [
      sim.editTier(account, target.symbol, target.leverage, {
        max_notional: maxNotional === target.max_notional ? maxNotional + 1000 : maxNotional,
      }),
    ];
  }
  const initial = Math.min(1, target.initial_margin * (random() < 0.5 ? 1.25 : 0.8));
  return [
    sim.editTier(account, target.symbol, target.leverage, {
      initial_margin: initial,
      maintenance_margin: (initial * 2) / 3,
    }),
  ];
}

/** Starts applying steps every `everyMs`; the timer does not keep the process alive. */
export function startChangeScript(sim: Simulator, options: ChangeScriptOptions): ChangeScript {
  if (!(options.everyMs > 0)) throw new RangeError(`Expected \`everyMs\` to be > 0, got ${options.everyMs}`);
  const log = (options.logger ?? silentLogger()).child({ component: 'simulator-script' });
  const random = seededRandom(options.seed ?? 1);
  const account = options.account ?? 'primary';
  const marks: number[] = []; // the change-log mark before each step, for reverts
  const listed = { n: 0 };
  let index = 0;
  let stopped = false;

  const apply = (step: ScriptStep): SimChange[] => {
    switch (step.op) {
      case 'edit':
        return [sim.editTier(step.account ?? account, step.symbol, step.leverage, step.patch)];
      case 'remove':
        return [sim.removeTier(step.account ?? account, step.symbol, step.leverage)];
      case 'add':
        return [sim.addTier(step.account ?? account, step.tier)];
      case 'list':
        return sim.listSymbol(
          step.account ?? account,
          step.symbol,
          step.levels === undefined ? {} : { levels: step.levels },
        );
      case 'delist':
        return sim.delistSymbol(step.account ?? account, step.symbol);
      case 'revert': {
        const mark = marks[marks.length - (step.back ?? 1)];
        return mark === undefined ? [] : sim.revertTo(mark);
      }
      case 'random':
        return randomStep(sim, account, random, marks, listed);
    }
  };

  const step = (): SimChange[] => {
    let next: ScriptStep | undefined = { op: 'random' };
    if (options.steps !== undefined) {
      if (index >= options.steps.length && options.loop === true) index = 0;
      next = options.steps[index++];
      if (next === undefined) {
        script.stop();
        return [];
      }
    }
    const mark = sim.mark();
    try {
      const changes = apply(next);
      marks.push(mark);
      log.debug({ op: next.op, changes: changes.length }, 'script step');
      return changes;
    } catch (error) {
      // A listed step may no longer apply (its tier was removed meanwhile): skip it, keep going.
      log.warn({ op: next.op, err: error }, 'script step skipped');
      return [];
    }
  };

  const timer = setInterval(() => {
    if (!stopped) step();
  }, options.everyMs);
  timer.unref();

  const script: ChangeScript = {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    step,
  };
  return script;
}
