/**
 * Readers need no write access (issue 11). The tests run as root, whom file modes do not stop, so
 * each reader runs as another user (uid 1000, through util-linux `setpriv`) on a folder and file
 * it may only read. A WAL database needs its `-shm` file: with the writer stopped there is none and
 * none can be created, so the reader opens the file `immutable`; with the writer running, the
 * writer's -shm (mode 0644) is read as it is; with writes pending in a `-wal` and no -shm at all,
 * the reader says exactly why it cannot read and what to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sweepAccount } from '../src/collect/sweep.ts';
import { HistoryStore } from '../src/store/history-store.ts';
import { openDatabase } from '../src/store/db.ts';
import { startHarness, type Harness } from './helpers/harness.ts';
import { CLI } from './helpers/faults.ts';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((candidate) => fs.existsSync(candidate));
const asRoot = process.getuid?.() === 0;
const skip = !asRoot || SETPRIV === undefined ? 'needs root and setpriv to run a reader as another user' : false;
const READER_UID = '1000';

/** Runs `tierwatch ...args` as uid 1000 with no supplementary groups. */
function asReader(
  args: string[],
  env: Record<string, string>,
): { code: number | null; stdout: string; stderr: string } {
  const child = spawnSync(
    SETPRIV!,
    ['--reuid', READER_UID, '--regid', READER_UID, '--clear-groups', process.execPath, CLI, ...args],
    {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', ...env },
      timeout: 60_000,
    },
  );
  return { code: child.status, stdout: child.stdout, stderr: child.stderr };
}

/** A history in `<dir>/ro/history.db`, then the folder and file made read-only for everyone but root. */
async function readOnlyHistory(h: Harness): Promise<string> {
  const folder = path.join(h.dir, 'ro');
  fs.mkdirSync(folder);
  const dbPath = path.join(folder, 'history.db');
  const db = openDatabase(dbPath);
  const store = new HistoryStore(db, { logger: h.logger });
  assert.ok((await sweepAccount(h.config({ TIERWATCH_DB: dbPath }), 'primary', { ...h, store })).ok);
  h.sim.editTier('primary', 'META-USD', '20', { max_notional: 4242 });
  assert.ok((await sweepAccount(h.config({ TIERWATCH_DB: dbPath }), 'primary', { ...h, store })).ok);
  db.close();
  fs.chmodSync(h.dir, 0o755); // mkdtemp made it owner-only; the reader must be able to pass through
  fs.chmodSync(dbPath, 0o444);
  fs.chmodSync(folder, 0o555);
  return dbPath;
}

const READERS: string[][] = [
  ['runs', '--format', 'json'],
  ['snapshot', '--format', 'json'],
  ['changes', '--format', 'json'],
  ['diff', 'run:1', '--format', 'json'],
  ['history', 'META-USD', '--format', 'json'],
  ['query', 'SELECT count(*) AS n FROM runs', '--format', 'json'],
  ['health'],
];

test(
  'every reader works on a read-only folder and file, the writer stopped (no -shm can be created: immutable open)',
  { skip, timeout: 180_000 },
  async () => {
    const h = await startHarness();
    try {
      const dbPath = await readOnlyHistory(h);
      const before = fs.readdirSync(path.dirname(dbPath));
      for (const args of READERS) {
        const result = asReader([...args, '--db', dbPath], { LOG_LEVEL: 'warn' });
        assert.equal(result.code, 0, `${args[0]}: ${result.stderr}`);
      }
      const runs = JSON.parse(asReader(['runs', '--format', 'json', '--db', dbPath], {}).stdout) as unknown[];
      assert.equal(runs.length, 2);
      assert.deepEqual(fs.readdirSync(path.dirname(dbPath)), before, 'the readers created nothing');
    } finally {
      fs.chmodSync(path.join(h.dir, 'ro'), 0o755);
      await h.close();
    }
  },
);

test(
  "with the writer running, a reader without write access reads through the writer's -shm and sees its latest commit",
  { skip, timeout: 120_000 },
  async () => {
    const h = await startHarness();
    let writer: ReturnType<typeof openDatabase> | undefined;
    try {
      const dbPath = await readOnlyHistory(h);
      fs.chmodSync(path.dirname(dbPath), 0o755);
      writer = openDatabase(dbPath); // root: the file mode does not stop it
      const store = new HistoryStore(writer, { logger: h.logger });
      h.sim.editTier('primary', 'META-USD', '20', { max_notional: 5151 });
      assert.ok((await sweepAccount(h.config({ TIERWATCH_DB: dbPath }), 'primary', { ...h, store })).ok);
      fs.chmodSync(path.dirname(dbPath), 0o555);
      assert.ok(fs.statSync(`${dbPath}-wal`).size > 0, 'the third run is still in the WAL');
      const result = asReader(['runs', '--format', 'json', '--db', dbPath], {});
      assert.equal(result.code, 0, result.stderr);
      assert.equal((JSON.parse(result.stdout) as unknown[]).length, 3);
    } finally {
      fs.chmodSync(path.join(h.dir, 'ro'), 0o755);
      writer?.close();
      await h.close();
    }
  },
);

test(
  'writes pending in a -wal with no -shm and no way to create one: DB_READ_FAILED saying why and what to do',
  { skip, timeout: 120_000 },
  async () => {
    const h = await startHarness();
    try {
      const dbPath = await readOnlyHistory(h);
      const folder = path.dirname(dbPath);
      fs.chmodSync(folder, 0o755);
      // A WAL holding a commit, as a writer killed on another host leaves it, without its -shm.
      const writer = openDatabase(dbPath);
      writer.sqlite.pragma('wal_autocheckpoint = 0');
      writer.sqlite.prepare("INSERT INTO meta (key, value) VALUES ('pending', 'yes')").run();
      fs.copyFileSync(`${dbPath}-wal`, path.join(h.dir, 'saved-wal'));
      writer.sqlite.close(); // no checkpoint: the raw connection closes; the -wal is then checkpointed and removed
      fs.copyFileSync(path.join(h.dir, 'saved-wal'), `${dbPath}-wal`);
      fs.rmSync(`${dbPath}-shm`, { force: true });
      fs.chmodSync(`${dbPath}-wal`, 0o444);
      fs.chmodSync(folder, 0o555);
      const result = asReader(['runs', '--format', 'json', '--db', dbPath], {});
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /Cannot read .*history\.db without write access: it is a WAL database and its shared-memory file .*-shm cannot be created here/,
      );
      assert.match(result.stderr, /holds writes not yet in the main file\. Give this user write access to /);
      assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
    } finally {
      fs.chmodSync(path.join(h.dir, 'ro'), 0o755);
      await h.close();
    }
  },
);
