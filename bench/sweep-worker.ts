/**
 * Sweep benchmark for one universe size, in a process of its own so its peak RSS is its own:
 * `node bench/sweep-worker.ts TIERS REPEATS`, forked with an IPC channel; it sends one message,
 * the result (or { error }), and exits.
 *
 * What it measures, against the simulator in a third process (pre-serialised pages, page size 1000):
 * - the floor: JSON.parse of the same pages (decoded from the bytes a socket delivers) plus one keyed
 *   comparison pass against the previous state (nested Maps, the cheapest keyed lookup we know),
 *   measured here, in this run; the parse without the decoding is reported beside it;
 * - the daemon's steady state: one HistoryStore kept across sweeps (current state in memory), the
 *   real sweepAccount code path, unchanged and with 1% of the tiers changed;
 * - a one-shot `collect`: open + migrate check + writer lock, sweep (current state loaded from the
 *   database), close (optimize + WAL checkpoint), in process; and the `collect` command itself as a
 *   child process (wall time and peak RSS, Node's start-up included).
 *
 * Phases: paging = connect + authenticate + every page's round trip (the client's frame JSON.parse
 * included); validation = what remains of the sweep outside paging and commit (row validation,
 * duplicate check, ledger bookkeeping); commit = commitSweep (BEGIN IMMEDIATE, diff, writes, COMMIT;
 * on a cold store also loading the current state); diff = diffTiers on the same inputs, timed on its
 * own right after the sweep: the part of commit that is the diff; checkpoint after = the WAL
 * checkpoint sweepAccount runs once the sweep is recorded (outside its durationMs, so outside the
 * steady-state total; inside the one-shot total), reported beside the commit.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sweepAccount, type SweepResult } from '../src/collect/sweep.ts';
import { openWriter } from '../src/commands/writer.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { diffTiers } from '../src/history/diff.ts';
import { silentLogger } from '../src/log.ts';
import { openSession } from '../src/qfex/client.ts';
import { DEMO_PUBLIC_KEY, DEMO_SECRET_KEY, syntheticUniverse } from '../src/sim/index.ts';
import { openDatabase } from '../src/store/db.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { floorPass, pagesLikeTheSimulator, previousState } from './sweep-floor.ts';
import { DiffMirror, instrument, loadCurrent } from './sweep-probe.ts';
import { startSimProcess, type SimProcess } from './sim-control.ts';
import { median, nowMs, round } from './stats.ts';
import { BUILT_CLI as CLI } from './paths.ts';

const PAGE_SIZE = 1000;
const CHANGE_FRACTION = 0.01;

interface SweepSample {
  total_ms: number;
  paging_ms: number;
  validation_ms: number;
  diff_ms: number;
  commit_ms: number;
  /** After the sweep, not in total_ms for the steady state (sweepAccount's durationMs ends before it). */
  checkpoint_ms: number;
  changes: number;
}

/** The per-phase medians of a set of samples, and the throughput of the median sweep. */
function summarize(samples: SweepSample[], tiers: number, extra: Record<string, number[]> = {}) {
  const pick = (key: keyof SweepSample) => round(median(samples.map((sample) => sample[key])));
  const total = pick('total_ms');
  const summary: Record<string, number> = {
    samples: samples.length,
    total_p50_ms: total,
    total_min_ms: round(Math.min(...samples.map((sample) => sample.total_ms))),
    paging_p50_ms: pick('paging_ms'),
    validation_p50_ms: pick('validation_ms'),
    diff_p50_ms: pick('diff_ms'),
    commit_p50_ms: pick('commit_ms'),
    checkpoint_after_p50_ms: pick('checkpoint_ms'),
    changes_per_sweep: samples[0]?.changes ?? 0,
    tiers_per_s: Math.round(tiers / (total / 1000)),
  };
  for (const [key, values] of Object.entries(extra)) summary[key] = round(median(values));
  return summary;
}

function configFor(sim: SimProcess, dbPath: string): Config {
  return loadConfig({
    QFEX_WS_URL: sim.url,
    QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY,
    QFEX_SECRET_KEY: DEMO_SECRET_KEY,
    TIERWATCH_DB: dbPath,
    TIERWATCH_PAGE_SIZE: String(PAGE_SIZE),
    LOG_LEVEL: 'silent',
  });
}

function okOrThrow(result: SweepResult, expectedChanges: number | null): Extract<SweepResult, { ok: true }> {
  if (!result.ok) throw new Error(`sweep failed: ${result.error.code} ${result.error.message}`);
  if (expectedChanges !== null && result.changes.length !== expectedChanges) {
    throw new Error(`sweep stored ${result.changes.length} changes, expected ${expectedChanges}`);
  }
  return result;
}

/** Reads every page once without storing anything: the simulator re-serialises changed pages here, off the clock. */
async function primeSimulator(config: Config): Promise<void> {
  const session = await openSession({
    url: config.wsUrl,
    credentials: { kind: 'hmac', publicKey: DEMO_PUBLIC_KEY, secretKey: DEMO_SECRET_KEY },
    timeouts: config.timeouts,
  });
  try {
    for (let offset = 0; ; offset += PAGE_SIZE - 1) {
      const rows = await session.requestLeveragePage(PAGE_SIZE, offset);
      if (rows.length <= 1) return;
    }
  } finally {
    session.close();
  }
}

/** Runs the `collect` command as a child process: wall time and (with GNU time) its peak RSS. */
async function cliCollect(config: Config, dbPath: string): Promise<{ wall_ms: number; peak_rss_bytes: number | null }> {
  const useTime = fs.existsSync('/usr/bin/time');
  const command = useTime ? '/usr/bin/time' : process.execPath;
  const args = useTime ? ['-f', 'TIERWATCH_BENCH_MAXRSS_KB=%M', process.execPath, CLI, 'collect'] : [CLI, 'collect'];
  const start = nowMs();
  const child = spawn(command, args, {
    env: {
      PATH: process.env.PATH ?? '',
      QFEX_WS_URL: config.wsUrl,
      QFEX_PUBLIC_KEY: DEMO_PUBLIC_KEY,
      QFEX_SECRET_KEY: DEMO_SECRET_KEY,
      TIERWATCH_DB: dbPath,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const wall = nowMs() - start;
  if (code !== 0) throw new Error(`tierwatch collect exited with ${code}: ${stderr.slice(0, 2000)}`);
  const match = /TIERWATCH_BENCH_MAXRSS_KB=(\d+)/.exec(stderr);
  return { wall_ms: wall, peak_rss_bytes: match ? Number(match[1]) * 1024 : null };
}

async function measure(tiers: number, repeats: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tierwatch-bench-sweep-${tiers}-`));
  const sim = await startSimProcess(tiers);
  const logger = silentLogger();
  let round_ = 0;
  try {
    // ---- the floor, on the very pages the simulator serves ----
    const universe = syntheticUniverse(tiers, 1);
    const pages = pagesLikeTheSimulator(universe, PAGE_SIZE);
    const previous = previousState(universe);
    {
      // The reconstruction must be byte-for-byte what the simulator sends: check the first page's rows.
      const probe = await openSession({
        url: sim.url,
        credentials: { kind: 'hmac', publicKey: DEMO_PUBLIC_KEY, secretKey: DEMO_SECRET_KEY },
        timeouts: { connectMs: 10_000, authMs: 10_000, requestMs: 30_000, idleMs: 60_000 },
      });
      const served = await probe.requestLeveragePage(PAGE_SIZE, 0);
      probe.close();
      const rebuilt = (JSON.parse(pages[0]!) as { available_leverage_levels_response: unknown[] })
        .available_leverage_levels_response;
      if (JSON.stringify(served) !== JSON.stringify(rebuilt)) {
        throw new Error('the floor pages differ from what the simulator serves');
      }
    }
    const pageBuffers = pages.map((page) => Buffer.from(page, 'utf8'));
    const floorSamples: number[] = [];
    const parseOnlySamples: number[] = [];
    floorPass(pageBuffers, previous); // warm-up
    for (let i = 0; i < repeats * 2; i++) {
      let start = nowMs();
      const changed = floorPass(pageBuffers, previous);
      floorSamples.push(nowMs() - start);
      if (changed !== 0) throw new Error(`floor pass found ${changed} changes in an unchanged universe`);
      start = nowMs();
      floorPass(pages, previous);
      parseOnlySamples.push(nowMs() - start);
    }
    const pageBytes = pages.reduce((sum, page) => sum + Buffer.byteLength(page), 0);

    // ---- steady state: one store across sweeps, as the daemon runs ----
    const steadyPath = path.join(dir, 'steady.db');
    const steadyDb = openDatabase(steadyPath, { logger });
    const steadyStore = new HistoryStore(steadyDb, { logger });
    const steadyConfig = configFor(sim, steadyPath);
    const steady = instrument(steadyStore);
    const deps = { store: steady.timedStore, logger, openSession: steady.timedOpen };

    const start = nowMs();
    okOrThrow(await sweepAccount(steadyConfig, 'primary', deps), tiers);
    const initialMs = nowMs() - start;
    const mirror = new DiffMirror(steadyPath);
    okOrThrow(await sweepAccount(steadyConfig, 'primary', deps), 0); // warm-up

    const runSteady = async (expected: number): Promise<SweepSample> => {
      steady.reset();
      const result = okOrThrow(await sweepAccount(steadyConfig, 'primary', deps), expected);
      const diffMs = mirror.timeAndApply(steady.phases.lastTiers!, result.changes);
      const { connect, requests, commit, checkpoint } = steady.phases;
      return {
        total_ms: result.durationMs,
        paging_ms: connect + requests,
        validation_ms: result.durationMs - connect - requests - commit,
        diff_ms: diffMs,
        commit_ms: commit,
        checkpoint_ms: checkpoint,
        changes: result.changes.length,
      };
    };
    const steadyUnchanged: SweepSample[] = [];
    for (let i = 0; i < repeats; i++) steadyUnchanged.push(await runSteady(0));
    const steadyChanged: SweepSample[] = [];
    for (let i = 0; i < repeats; i++) {
      const count = await sim.change(CHANGE_FRACTION, round_++);
      await primeSimulator(steadyConfig);
      steadyChanged.push(await runSteady(count));
    }
    steadyDb.close();
    const peakAfterSteady = process.resourceUsage().maxRSS * 1024;

    // ---- one-shot collect, in process: open, sweep with a cold store, close ----
    const oneShotPath = path.join(dir, 'oneshot.db');
    const oneShotConfig = configFor(sim, oneShotPath);
    const runOneShot = async (expected: number | null) => {
      const began = nowMs();
      const writer = openWriter(oneShotPath, 'bench collect', logger);
      let result: SweepResult;
      const probe = instrument(writer.store);
      let openMs: number;
      let closeMs: number;
      try {
        writer.store.markAbandonedRuns(new Date());
        openMs = nowMs() - began;
        result = await sweepAccount(oneShotConfig, 'primary', {
          store: probe.timedStore,
          logger,
          openSession: probe.timedOpen,
        });
      } finally {
        const closing = nowMs();
        writer.close();
        closeMs = nowMs() - closing;
      }
      const total = nowMs() - began;
      const ok = okOrThrow(result, expected);
      const { connect, requests, commit, checkpoint } = probe.phases;
      return { ok, total, openMs, closeMs, connect, requests, commit, checkpoint, tiersSwept: probe.phases.lastTiers! };
    };
    await runOneShot(null); // the first fills the database
    const oneShot = async (expected: number) => {
      const samples: SweepSample[] = [];
      const extra = {
        open_p50_ms: [] as number[],
        close_p50_ms: [] as number[],
        load_current_p50_ms: [] as number[],
        sweep_only_p50_ms: [] as number[],
      };
      for (let i = 0; i < repeats; i++) {
        if (expected > 0) {
          const count = await sim.change(CHANGE_FRACTION, round_++);
          if (count !== expected) throw new Error(`changed ${count} tiers, expected ${expected}`);
          await primeSimulator(oneShotConfig);
        }
        const before = loadCurrent(oneShotPath); // off the clock: the state the sweep will load, and the cost of loading it
        const run = await runOneShot(expected);
        const diffStart = nowMs();
        diffTiers(before.tiers, run.tiersSwept);
        const diffMs = nowMs() - diffStart;
        samples.push({
          total_ms: run.total,
          paging_ms: run.connect + run.requests,
          validation_ms: run.ok.durationMs - run.connect - run.requests - run.commit,
          diff_ms: diffMs,
          // commitSweep on a cold store loads the current state first: that is in the commit too.
          commit_ms: run.commit,
          checkpoint_ms: run.checkpoint,
          changes: run.ok.changes.length,
        });
        extra.open_p50_ms.push(run.openMs);
        extra.close_p50_ms.push(run.closeMs);
        extra.load_current_p50_ms.push(before.ms);
        extra.sweep_only_p50_ms.push(run.ok.durationMs);
      }
      return summarize(samples, tiers, extra);
    };
    const oneShotUnchanged = await oneShot(0);
    const oneShotChanged = await oneShot(Math.ceil(tiers * CHANGE_FRACTION));
    const peakRss = process.resourceUsage().maxRSS * 1024;

    // ---- the `collect` command itself, as a user runs it ----
    const cli: Array<{ wall_ms: number; peak_rss_bytes: number | null }> = [];
    const cliRuns = Math.max(3, Math.min(repeats, 5));
    if (fs.existsSync(CLI)) for (let i = 0; i < cliRuns; i++) cli.push(await cliCollect(oneShotConfig, oneShotPath));

    return {
      tiers,
      pages: pages.length,
      page_size: PAGE_SIZE,
      wire_bytes: pageBytes,
      floor: {
        what: 'the same pages as received bytes: UTF-8 decode + JSON.parse + one keyed comparison pass (nested Map lookups), in process',
        p50_ms: round(median(floorSamples)),
        without_decode_p50_ms: round(median(parseOnlySamples)),
        min_ms: round(Math.min(...floorSamples)),
        samples: floorSamples.length,
      },
      initial_sweep_ms: round(initialMs),
      steady: { unchanged: summarize(steadyUnchanged, tiers), changed_1pct: summarize(steadyChanged, tiers) },
      one_shot: { unchanged: oneShotUnchanged, changed_1pct: oneShotChanged },
      cli_collect:
        cli.length === 0
          ? null
          : {
              samples: cli.length,
              wall_p50_ms: round(median(cli.map((run) => run.wall_ms))),
              peak_rss_bytes:
                cli[0]!.peak_rss_bytes === null ? null : median(cli.map((run) => run.peak_rss_bytes ?? 0)),
            },
      peak_rss_bytes_after_steady: peakAfterSteady,
      peak_rss_bytes: peakRss,
    };
  } finally {
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export type SweepSizeResult = Awaited<ReturnType<typeof measure>>;

const tiersArg = Number(process.argv[2]);
const repeatsArg = Number(process.argv[3] ?? '5');
if (process.send === undefined || !Number.isInteger(tiersArg) || tiersArg < 1) {
  console.error('usage: fork bench/sweep-worker.ts TIERS [REPEATS] with an IPC channel (bench/run.ts does)');
  process.exit(2);
}
try {
  const result = await measure(tiersArg, repeatsArg);
  process.send({ result }, () => process.exit(0));
} catch (error) {
  process.send({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, () =>
    process.exit(1),
  );
}
