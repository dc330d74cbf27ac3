/**
 * Scenario files for `tierwatch simulate --scenario FILE`: JSON holding SimulatorOptions (minus the
 * logger and clock), faults to inject at start, and a change script. Example:
 *
 *   { "maxPageSize": 100,
 *     "keys": [{ "publicKey": "qfex_pub_x", "secretKey": "qfex_secret_x", "accounts": ["primary", "1111…"] }],
 *     "universe": { "primary": "default", "1111…": { "synthetic": 500, "seed": 7 } },
 *     "legacy": { "maxPosition": true },
 *     "faults": [{ "kind": "error_reply", "code": "RateLimited", "retryAfterMs": 500 },
 *                { "kind": "drop_at_page", "page": 3, "times": 2 }],
 *     "script": { "everyMs": 5000, "seed": 42 } }
 *
 * Universe entries are "default" (the documented symbols), { "synthetic": N, "seed"?: S }, or a list
 * of tier rows. Fault objects are those of faults.ts.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { TierwatchError } from '../errors.ts';
import { AUTH_FAILURE_MODES, validateFault, type Fault } from './faults.ts';
import type { ChangeScriptOptions, ScriptStep } from './script.ts';
import type { SimulatorOptions } from './server.ts';
import { defaultUniverse, syntheticUniverse, type SimTier } from './universe.ts';

export type Scenario = Omit<SimulatorOptions, 'logger' | 'now'> & {
  faults?: Fault[];
  script?: Omit<ChangeScriptOptions, 'logger'>;
};

const tierSchema = z.strictObject({
  id: z.string(),
  symbol: z.string().min(1),
  leverage: z.union([z.string(), z.number()]).transform(String),
  initial_margin: z.number(),
  maintenance_margin: z.number(),
  max_notional: z.number(),
});

const accountsSchema = z.array(z.string().min(1)).min(1).optional();
const positiveInt = z.number().int().positive();

const scenarioSchema = z.strictObject({
  host: z.string().optional(),
  port: z.number().int().min(0).max(65535).optional(),
  tls: z.strictObject({ key: z.string(), cert: z.string() }).optional(),
  keys: z
    .array(z.strictObject({ publicKey: z.string().min(1), secretKey: z.string().min(1), accounts: accountsSchema }))
    .optional(),
  jwts: z.array(z.strictObject({ token: z.string().min(1), accounts: accountsSchema })).optional(),
  universe: z
    .record(
      z.string(),
      z.union([
        z.literal('default'),
        z.strictObject({ synthetic: z.number().int().min(0), seed: z.number().int().optional() }),
        z.array(tierSchema),
      ]),
    )
    .optional(),
  maxPageSize: positiveInt.optional(),
  authDeadlineMs: positiveInt.optional(),
  pingIntervalMs: positiveInt.optional(),
  clockSkewSec: z.number().min(0).optional(),
  nonceWindowMs: z.number().int().min(0).optional(),
  legacy: z
    .strictObject({
      authSuccess: z.boolean().optional(),
      flatErrors: z.boolean().optional(),
      maxPosition: z.boolean().optional(),
      numericLeverage: z.boolean().optional(),
    })
    .optional(),
  authFailureMode: z.enum(AUTH_FAILURE_MODES as [string, ...string[]]).optional(),
  strict: z.boolean().optional(),
  maxPayloadBytes: positiveInt.optional(),
  preserializePages: z.boolean().optional(),
  ackShape: z.enum(['ack_response', 'ack']).optional(),
  faults: z.array(z.looseObject({ kind: z.string() })).optional(),
  script: z
    .strictObject({
      everyMs: positiveInt,
      seed: z.number().int().optional(),
      account: z.string().optional(),
      steps: z
        .array(z.looseObject({ op: z.enum(['edit', 'remove', 'add', 'list', 'delist', 'revert', 'random']) }))
        .optional(),
      loop: z.boolean().optional(),
    })
    .optional(),
});

/** Validates a parsed scenario object; `source` names it in error messages. Throws CONFIG_INVALID. */
export function parseScenario(value: unknown, source = 'scenario'): Scenario {
  const result = scenarioSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `${issue.path.join('.') || '(top level)'}: ${issue.message}`)
      .join('; ');
    throw new TierwatchError('CONFIG_INVALID', `Invalid simulator scenario ${source}: ${problems}`);
  }
  const { universe, faults, script, authFailureMode, ...rest } = result.data;
  const scenario: Scenario = { ...rest };
  if (authFailureMode !== undefined) scenario.authFailureMode = authFailureMode as Scenario['authFailureMode'];
  if (universe !== undefined) {
    const built: Record<string, SimTier[]> = {};
    for (const [account, spec] of Object.entries(universe)) {
      built[account] =
        spec === 'default'
          ? defaultUniverse()
          : Array.isArray(spec)
            ? spec
            : syntheticUniverse(spec.synthetic, spec.seed);
    }
    scenario.universe = built;
  }
  if (faults !== undefined) {
    scenario.faults = faults.map((fault, i) => {
      try {
        validateFault(fault as Fault);
      } catch (error) {
        throw new TierwatchError(
          'CONFIG_INVALID',
          `Invalid simulator scenario ${source}: faults.${i}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      return fault as Fault;
    });
  }
  if (script !== undefined) {
    scenario.script = {
      ...script,
      ...(script.steps === undefined ? {} : { steps: script.steps as ScriptStep[] }),
    } as Scenario['script'];
  }
  return scenario;
}

/** Reads and validates a JSON scenario file. Throws CONFIG_INVALID naming the file and the field. */
export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TierwatchError('CONFIG_INVALID', `Cannot read simulator scenario ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TierwatchError(
      'CONFIG_INVALID',
      `Simulator scenario ${path} is not valid JSON: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return parseScenario(value, path);
}
