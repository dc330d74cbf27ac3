/**
 * The built-in QFEX Trade WebSocket simulator: the demo, the tests and the benchmarks run against
 * it. See server.ts for the protocol it speaks, faults.ts for the fault catalogue, book.ts for tier
 * mutations and the change log, script.ts for changes over time, scenario.ts for scenario files.
 */
export { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, startSimulator } from './server.ts';
export type { SimPageRequest, SimStats, Simulator, SimulatorOptions } from './server.ts';
export { defaultUniverse, syntheticUniverse, makeTier, stableTierId, compareTiers } from './universe.ts';
export type { SimTier } from './universe.ts';
export { diffTiers } from './book.ts';
export type { SimChange, SimChangeKind, TierDiff, TierPatch } from './book.ts';
export { AUTH_FAILURE_MODES, BAD_FRAME_KINDS, ECHO_ENCODINGS, FAULT_KINDS, validateFault } from './faults.ts';
export type { AuthFailureMode, BadFrameKind, EchoEncoding, Fault, FaultKind, FaultRepeat } from './faults.ts';
export type { AuthFailureReason, SimJwt, SimKeyPair } from './auth.ts';
export type { LegacyOptions } from './frames.ts';
export { startChangeScript } from './script.ts';
export type { ChangeScript, ChangeScriptOptions, ScriptStep } from './script.ts';
export { loadScenario, parseScenario } from './scenario.ts';
export type { Scenario } from './scenario.ts';
export { computeSignature, verifySignature, NONCE_PATTERN } from './signature.ts';
