/**
 * A throwaway Postgres on this machine, for the tests (test/helpers/pg-server.ts) and the benchmark
 * (bench/pg.ts): Debian's `postgresql` package, run as the `postgres` user when we run as root, on a
 * free loopback port with its own data folder and socket folder, durability off (it holds nothing
 * of value). `stop` stops it by its PID and deletes its folder; a detached watchdog does both if
 * the process that started it dies first.
 *
 * `TIERWATCH_TEST_PG_BIN` names the folder of initdb/pg_ctl; otherwise the newest
 * /usr/lib/postgresql/N/bin, then PATH.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface PgServer {
  /** Connection URL of the server's maintenance database (`postgres`). */
  adminUrl: string;
  /** Creates an empty database with a fresh name and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
}

/** A started server and how to stop it. */
export interface ThrowawayPostgres {
  server: PgServer;
  stop: () => Promise<void>;
}

let databaseCounter = 0;

/** The folder holding initdb and pg_ctl, or undefined when Postgres is not installed. */
export function findPgBin(): string | undefined {
  const fromEnv = process.env.TIERWATCH_TEST_PG_BIN;
  if (fromEnv !== undefined && fromEnv !== '') return fs.existsSync(path.join(fromEnv, 'initdb')) ? fromEnv : undefined;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((name) => /^\d+$/.test(name) && fs.existsSync(path.join(root, name, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0] !== undefined) return path.join(root, versions[0], 'bin');
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() !== '' ? path.dirname(which.stdout.trim()) : undefined;
}

/** A server someone else runs: creates databases on it, never stops it. */
export function serverAt(adminUrl: string): PgServer {
  return {
    adminUrl,
    async createDatabase(prefix = 'tw') {
      databaseCounter += 1;
      const name = `${prefix}_${process.pid}_${databaseCounter}_${Date.now().toString(36)}`.toLowerCase();
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Runs a Postgres binary, as `postgres` when we are root (initdb and the server refuse root). */
function runAs(bin: string, args: string[], asPostgres: boolean): { status: number | null; output: string } {
  const result = asPostgres
    ? spawnSync('runuser', ['-u', 'postgres', '--', bin, ...args], { encoding: 'utf8' })
    : spawnSync(bin, args, { encoding: 'utf8' });
  return {
    status: result.status,
    output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error?.message ?? ''}`,
  };
}

export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const bin = findPgBin();
  if (bin === undefined) throw new Error('Postgres binaries not found (initdb, pg_ctl)');
  const asPostgres = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tierwatch-pg-'));
  if (asPostgres) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (ids.status !== 0) throw new Error('running as root but there is no `postgres` user to run the server as');
    fs.chownSync(dir, Number(ids.stdout.trim()), Number(gids.stdout.trim()));
  }
  const data = path.join(dir, 'data');
  const init = runAs(
    path.join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8', '--no-sync'],
    asPostgres,
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.output}`);
  // Loopback only, a socket folder of its own, and durability off: a test server holds nothing of value.
  const options = `-k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  let port = 0;
  let lastOutput = '';
  for (let attempt = 0; attempt < 3 && port === 0; attempt += 1) {
    const candidate = await freePort();
    const start = runAs(
      path.join(bin, 'pg_ctl'),
      ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '120', '-o', `${options} -p ${candidate}`, 'start'],
      asPostgres,
    );
    if (start.status === 0) port = candidate;
    else lastOutput = `${start.output}\n${readIfExists(path.join(dir, 'server.log'))}`;
  }
  if (port === 0) throw new Error(`pg_ctl start failed: ${lastOutput}`);
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  // Backstop for a test process that dies without its after hook: stop the server and delete the folder.
  const watchdog = spawn(
    'sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -QUIT ${pid} 2>/dev/null; while kill -0 ${pid} 2>/dev/null; do sleep 0.2; done; rm -rf '${dir}'`,
    ],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  watchdog.unref();
  const stop = async () => {
    try {
      process.kill(pid, 'SIGQUIT'); // "immediate" shutdown: no checkpoint, the folder is deleted next
    } catch {
      // already gone
    }
    const deadline = Date.now() + 60_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { server: serverAt(`postgres://postgres@127.0.0.1:${port}/postgres`), stop };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
