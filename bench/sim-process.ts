/**
 * The simulator in a process of its own, for the benchmark: `node bench/sim-process.ts TIERS [SEED]`
 * forked with an IPC channel. It serves a synthetic universe with pre-serialised pages (so its own
 * JSON encoding is not what is measured) and obeys two messages from its parent:
 *   { op: 'change', fraction, round }  edit max_notional of ⌈fraction × tiers⌉ tiers spread evenly
 *                                      over the list; answers { op: 'changed', count }
 *   { op: 'stop' }                     close and exit
 * Its first message is { op: 'ready', url }.
 */
import { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, startSimulator, syntheticUniverse } from '../src/sim/index.ts';

type Command = { op: 'change'; fraction: number; round: number } | { op: 'stop' };

const tiers = Number(process.argv[2]);
const seed = Number(process.argv[3] ?? '1');
if (!Number.isInteger(tiers) || tiers < 1 || typeof process.send !== 'function') {
  console.error('usage: fork bench/sim-process.ts TIERS [SEED] with an IPC channel');
  process.exit(2);
}
const send = process.send.bind(process);

const sim = await startSimulator({
  universe: { primary: syntheticUniverse(tiers, seed) },
  keys: [{ publicKey: DEMO_PUBLIC_KEY, secretKey: DEMO_SECRET_KEY, accounts: ['primary'] }],
  preserializePages: true,
  maxPageSize: 1000,
  // A sweep of 100,000 tiers must not be cut by the heartbeat or the auth deadline.
  pingIntervalMs: 60_000,
});

process.on('message', (message: Command) => {
  if (message.op === 'stop') {
    void sim.close().then(() => process.exit(0));
    return;
  }
  if (message.op === 'change') {
    const rows = sim.tiers('primary');
    const count = Math.max(1, Math.ceil(rows.length * message.fraction));
    const stride = Math.max(1, Math.floor(rows.length / count));
    // A different starting row each round, so successive rounds touch different tiers.
    const start = message.round % stride;
    let changed = 0;
    for (let index = start; changed < count && index < rows.length; index += stride) {
      const row = rows[index]!;
      sim.editTier('primary', row.symbol, row.leverage, { max_notional: row.max_notional + 1000 });
      changed += 1;
    }
    send({ op: 'changed', count: changed });
  }
});
process.on('disconnect', () => {
  void sim.close().then(() => process.exit(0));
});

send({ op: 'ready', url: sim.url });
