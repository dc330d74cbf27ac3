/**
 * `tierwatch simulate`: the built-in QFEX simulator on its own, for trying tierwatch (or another
 * client) without the exchange. It accepts the key pair in QFEX_PUBLIC_KEY / QFEX_SECRET_KEY, or
 * the fixed demo keys, which belong to no real account and may be printed.
 *
 * `--replay FILE` serves a transcript recorded by `tierwatch check --record` instead (see
 * sim/replay.ts): any credentials are accepted, and each request is answered as it was recorded.
 */
import { TierwatchError } from '../errors.ts';
import { durationOption, integerOption } from './options.ts';
import type { SimulatorOptions } from '../sim/index.ts';
import type { CommandContext, CommandSpec } from './context.ts';

export const simulateCommand: CommandSpec = {
  name: 'simulate',
  summary: 'run the built-in QFEX simulator on loopback (demo keys unless QFEX_PUBLIC_KEY/QFEX_SECRET_KEY are set)',
  configure(command) {
    command
      .option('--port <n>', 'port to listen on; 0 picks a free one (the URL is printed)', '0')
      .option('--host <address>', 'address to listen on', '127.0.0.1')
      .option('--max-page-size <n>', 'server-side cap on the page size (default 1000)')
      .option('--tiers <n>', 'serve a synthetic universe of this many tiers instead of the realistic default')
      .option('--change-every <duration>', 'change some tiers every interval, e.g. 3s (default: never)')
      .option('--seed <n>', 'seed for the synthetic universe and the changes', '1')
      .option('--preserialize', "reuse each page's JSON while its account is unchanged (for benchmarks)")
      .option('--scenario <file>', 'JSON scenario file: options, faults and a change script')
      .option(
        '--replay <file>',
        'serve a transcript recorded with `tierwatch check --record` instead of the simulated exchange',
      );
  },
  async run(context) {
    if (typeof context.options.replay === 'string') return replay(context, context.options.replay);
    // Loaded here, not at the top: no other command should pay for the simulator at start-up.
    const { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, loadScenario, startChangeScript, startSimulator, syntheticUniverse } =
      await import('../sim/index.ts');
    const { options, io } = context;
    const env = io.env;
    const publicKey = env.QFEX_PUBLIC_KEY?.trim() || DEMO_PUBLIC_KEY;
    const secretKey = env.QFEX_SECRET_KEY?.trim() || (publicKey === DEMO_PUBLIC_KEY ? DEMO_SECRET_KEY : undefined);
    if (secretKey === undefined) {
      throw new TierwatchError(
        'CONFIG_INVALID',
        '`QFEX_PUBLIC_KEY` is set but `QFEX_SECRET_KEY` is not; set both, or neither to use the demo keys.',
      );
    }
    const seed = integerOption(options.seed, '--seed', 0, 2 ** 31) ?? 1;
    const tiers = integerOption(options.tiers, '--tiers', 1, 10_000_000);
    const maxPageSize = integerOption(options.maxPageSize, '--max-page-size', 1, 1_000_000);
    const changeEveryMs = durationOption(options.changeEvery, '--change-every');
    const scenario = typeof options.scenario === 'string' ? loadScenario(options.scenario) : undefined;

    const { faults = [], script: scenarioScript, ...scenarioOptions } = scenario ?? {};
    const simOptions: SimulatorOptions = {
      ...scenarioOptions,
      host: String(options.host),
      port: integerOption(options.port, '--port', 0, 65535) ?? 0,
      keys: [{ publicKey, secretKey, accounts: ['primary'] }],
      ...(tiers === undefined ? {} : { universe: { primary: syntheticUniverse(tiers, seed) } }),
      ...(maxPageSize === undefined ? {} : { maxPageSize }),
      ...(options.preserialize === true ? { preserializePages: true } : {}),
      logger: context.logger(),
    };
    const sim = await startSimulator(simOptions);
    for (const fault of faults) sim.inject(fault);
    // --change-every overrides the scenario's own script.
    const scriptOptions = changeEveryMs !== undefined ? { everyMs: changeEveryMs, seed } : scenarioScript;
    const script =
      scriptOptions === undefined ? null : startChangeScript(sim, { ...scriptOptions, logger: context.logger() });

    context.print(`QFEX simulator listening on ${sim.url}`);
    context.print(`public key: ${publicKey}`);
    if (publicKey === DEMO_PUBLIC_KEY) {
      context.print(`secret key: ${DEMO_SECRET_KEY} (demo key, belongs to no real account)`);
    }
    context.print('press Ctrl-C to stop');

    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve();
      else io.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    script?.stop();
    await sim.close();
    return 0;
  },
};

/** Options that shape the simulated exchange, which a replay does not have. */
const SIMULATION_ONLY = [
  ['maxPageSize', '--max-page-size'],
  ['tiers', '--tiers'],
  ['changeEvery', '--change-every'],
  ['preserialize', '--preserialize'],
  ['scenario', '--scenario'],
] as const;

async function replay(context: CommandContext, path: string): Promise<number> {
  const given = SIMULATION_ONLY.filter(([option]) => context.options[option] !== undefined).map(([, flag]) => flag);
  if (given.length > 0) {
    throw new TierwatchError(
      'USAGE',
      `\`--replay\` serves a recorded transcript and cannot be combined with ${given.join(', ')}.`,
    );
  }
  const { readTranscript } = await import('../qfex/transcript.ts');
  const { startReplayServer } = await import('../sim/replay.ts');
  const transcript = readTranscript(path, '--replay');
  const server = await startReplayServer({
    transcript,
    host: String(context.options.host),
    port: integerOption(context.options.port, '--port', 0, 65535) ?? 0,
    logger: context.logger(),
  });
  context.print(`QFEX replay listening on ${server.url}`);
  context.print(
    `transcript: ${path} (recorded ${transcript.header.recorded_at || 'at an unknown time'} from ${transcript.header.endpoint || 'an unknown endpoint'}; ${server.sessions} session(s), ${server.requests} distinct request(s))`,
  );
  context.print('any credentials are accepted; press Ctrl-C to stop');
  await new Promise<void>((resolve) => {
    if (context.io.signal.aborted) resolve();
    else context.io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.close();
  return 0;
}
