/**
 * Every example in README.md and docs/*.md runs as written, so a page that stops being true fails
 * the build (docs/README.md, "The examples", says the same for readers):
 *
 * - ```sh blocks: each command must exit 0;
 * - ```console blocks: each `$ command` must print what follows it (stdout and stderr together),
 *   and `$ echo $?` gives the exit status expected of the command before it (0 when there is none);
 * - ```sql blocks: each statement runs through `tierwatch query`, exit 0.
 *
 * They run with the built CLI (`npm run build` first; `npm ci` builds it), `tierwatch` from
 * node_modules/.bin first on PATH, in a temporary folder per page whose ./data/demo.db and
 * ./data/tierwatch.db are the demo history (test/helpers/demo-history.ts); the blocks of one page run in
 * order in that folder, and their `export` lines carry over, as in one shell. The simulator that
 * recorded the history stands in for the exchange (QFEX_WS_URL and the demo keys are set).
 *
 * A comment just before a block changes how it is run, visibly in the page:
 *   <!-- docs-test: skip — reason -->        not run (keep these few, each with a true reason);
 *   <!-- docs-test: exit N — reason -->      each command must exit N;
 *   <!-- docs-test: simulator — reason -->   its `export QFEX_*` lines are dropped for the simulator's;
 *   <!-- docs-test: postgres — reason -->    its postgres:// URLs point at a real throwaway server
 *                                            (test/helpers/pg-server.ts): the host and port are
 *                                            replaced, the user, password and database kept.
 * Commands that serve until stopped (`tierwatch run|demo|simulate|serve`) are stopped with SIGTERM after
 * their first line of output and must then exit 0.
 *
 * The second test checks that every relative link in these pages reaches a file, and its #anchor a
 * heading there.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDemoHistory, type DemoHistory } from './helpers/demo-history.ts';
import { postgresOrSkip, stopPgServer } from './helpers/pg-server.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'node_modules', '.bin');
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];
/** One command's bound; the slowest (`tierwatch query`, a process of its own) takes ~1 s here. */
const COMMAND_TIMEOUT_MS = 30_000;
const LONG_RUNNING = /^(?:[A-Z_]+=\S*\s+)*tierwatch\s+(?:run|demo|simulate|serve)\b/;

type Directive = { kind: 'skip' | 'exit' | 'simulator' | 'postgres'; code: number; reason: string };
interface Block {
  page: string;
  line: number;
  lang: 'sh' | 'console' | 'sql';
  lines: string[];
  directive: Directive | null;
}

/** The fenced sh, console and sql blocks of a page, each with the docs-test comment before it. */
export function extractBlocks(page: string, text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && !/^```\s*$/.test(lines[i]!); i += 1) body.push(lines[i]!);
    const lang = open[1];
    if (lang !== 'sh' && lang !== 'console' && lang !== 'sql') continue;
    let previous = start - 1;
    while (previous >= 0 && lines[previous]!.trim() === '') previous -= 1;
    const comment =
      previous >= 0
        ? /^<!-- docs-test: (skip|exit|simulator|postgres)(?: (\d+))? — (.+?) -->$/.exec(lines[previous]!)
        : null;
    if (previous >= 0 && comment === null && lines[previous]!.startsWith('<!-- docs-test')) {
      assert.fail(`${page}:${previous + 1}: unreadable docs-test comment: ${lines[previous]}`);
    }
    const directive =
      comment === null
        ? null
        : { kind: comment[1] as Directive['kind'], code: Number(comment[2] ?? 0), reason: comment[3]! };
    blocks.push({ page, line: start + 1, lang, lines: body, directive });
  }
  return blocks;
}

/** Logical lines of a shell block: continuations joined, blank and comment-only lines left out. */
function shellCommands(lines: string[]): string[] {
  const commands: string[] = [];
  let pending = '';
  for (const line of lines) {
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const command = (pending + line).trim();
    pending = '';
    if (command !== '' && !command.startsWith('#')) commands.push(command);
  }
  return commands;
}

/** What depends on the clock of the run, not on the history: the age of the last sweep, "now". */
function normalise(output: string): string[] {
  const lines = output.split('\n').map((line) =>
    line
      .replace(/\((?:\d+[smhdw] ?)+ ago\)/g, '(AGO)')
      .replace(/^Tiers at \d{4}-\d\d-\d\dT[\d:.]+Z:$/, 'Tiers at (NOW):')
      .trimEnd(),
  );
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines;
}

interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs one command in bash after the exports so far; stdout and stderr together, in order. */
function runCommand(command: string, exports: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Outcome> {
  const longRunning = LONG_RUNNING.test(command);
  // `exec` makes the long-running command itself the process that gets SIGTERM.
  const script = ['exec 2>&1', ...exports, longRunning ? `exec ${command}` : command].join('\n');
  return new Promise((resolvePromise, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    let stopping = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`\`${command}\` did not finish within ${COMMAND_TIMEOUT_MS} ms; output so far:\n${output}`));
    }, COMMAND_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (longRunning && !stopping && output.includes('\n')) {
        stopping = true;
        child.kill('SIGTERM');
      }
    });
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (longRunning && !stopping) output += '\n(ended before its first line of output)';
      resolvePromise({ status, signal, output });
    });
  });
}

const hasSqlite3 = spawnSync('sqlite3', ['-version']).status === 0;

let history: DemoHistory;
let historyDir: string;
let baseEnv: NodeJS.ProcessEnv;

before(async () => {
  assert.ok(
    existsSync(join(BIN, 'tierwatch')),
    'node_modules/.bin/tierwatch links the built CLI: run `npm run build` (npm ci does)',
  );
  historyDir = mkdtempSync(join(tmpdir(), 'tierwatch-docs-history-'));
  history = await buildDemoHistory(join(historyDir, 'demo.db'));
  const env: NodeJS.ProcessEnv = {};
  // The examples see the environment a reader's shell would have: none of the runner's settings.
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(TIERWATCH_|QFEX_|LOG_LEVEL$|NO_COLOR$|NODE_TEST|NODE_OPTIONS$)/.test(name)) env[name] = value;
  }
  baseEnv = { ...env, ...history.env, PATH: `${BIN}:${process.env.PATH ?? ''}` };
});

after(async () => {
  await stopPgServer();
  await history?.close();
  if (historyDir !== undefined) rmSync(historyDir, { recursive: true, force: true });
});

/** A reader's folder: the demo history at ./data/demo.db and the default ./data/tierwatch.db. */
function pageFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-docs-'));
  mkdirSync(join(dir, 'data'), { mode: 0o700 });
  copyFileSync(join(historyDir, 'demo.db'), join(dir, 'data', 'demo.db'));
  copyFileSync(join(historyDir, 'demo.db'), join(dir, 'data', 'tierwatch.db'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

async function runShellBlock(block: Block, exports: string[], cwd: string): Promise<void> {
  const expected = block.directive?.kind === 'exit' ? block.directive.code : 0;
  for (const command of shellCommands(block.lines)) {
    if (command.startsWith('export ')) {
      if (block.directive?.kind === 'simulator' && /^export QFEX_/.test(command)) continue;
      exports.push(command);
      continue;
    }
    const outcome = await runCommand(command, exports, cwd, baseEnv);
    assert.equal(
      outcome.status,
      expected,
      `${block.page}:${block.line}: \`${command}\` exited ${outcome.status ?? outcome.signal}, expected ${expected}:\n${outcome.output}`,
    );
  }
}

async function runConsoleBlock(block: Block, exports: string[], cwd: string): Promise<void> {
  // Each `$ command` with the lines up to the next one.
  const steps: Array<{ command: string; expected: string[] }> = [];
  for (const line of block.lines) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: [] });
    else if (steps.length > 0) steps.at(-1)!.expected.push(line);
    else assert.fail(`${block.page}:${block.line}: a console block starts with a \`$ \` command`);
  }
  let last: Outcome | null = null;
  let lastCommand = '';
  for (const [index, step] of steps.entries()) {
    const where = `${block.page}:${block.line}: \`${step.command}\``;
    if (step.command === 'echo $?') {
      assert.ok(last !== null, `${where} follows a command`);
      assert.equal(
        String(last.status),
        step.expected.join('\n').trim(),
        `${block.page}:${block.line}: exit status of \`${lastCommand}\``,
      );
      continue;
    }
    if (step.command.startsWith('export ')) {
      exports.push(step.command);
      continue;
    }
    last = await runCommand(step.command, exports, cwd, baseEnv);
    lastCommand = step.command;
    if (steps[index + 1]?.command !== 'echo $?') {
      assert.equal(last.status, 0, `${where} exited ${last.status ?? last.signal}:\n${last.output}`);
    }
    assert.deepEqual(
      normalise(last.output),
      normalise(step.expected.join('\n')),
      `${where} prints what the page shows`,
    );
  }
}

async function runSqlBlock(block: Block, cwd: string): Promise<void> {
  const statements = block.lines
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n')
    .split(/;\s*$/m)
    .map((statement) => statement.trim())
    .filter((statement) => statement !== '');
  assert.ok(statements.length > 0, `${block.page}:${block.line}: an sql block holds a statement`);
  for (const statement of statements) {
    const outcome = await runCommand(`tierwatch query --db ./data/demo.db ${shellQuote(statement)}`, [], cwd, baseEnv);
    assert.equal(
      outcome.status,
      0,
      `${block.page}:${block.line}: \`${statement}\` exited ${outcome.status ?? outcome.signal}:\n${outcome.output}`,
    );
  }
}

/** A postgres:// URL of the page, pointed at the test's server: its host and port replaced, the rest kept. */
function onTestServer(line: string, hostAndPort: string): string {
  return line.replace(/(postgres(?:ql)?:\/\/(?:[^@\s/'"]*@)?)[^/\s:'"]+(?::\d+)?/g, `$1${hostAndPort}`);
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

describe('every example in README.md and docs/ runs as written against the demo history', { concurrency: 3 }, () => {
  for (const page of PAGES) {
    const blocks = extractBlocks(page, readFileSync(join(ROOT, page), 'utf8'));
    it(`${page} (${blocks.length} blocks)`, async (t) => {
      const cwd = pageFolder();
      const exports: string[] = [];
      try {
        for (const block of blocks) {
          const name = `${page}:${block.line} (${block.lang})`;
          if (block.directive?.kind === 'skip') {
            await t.test(name, { skip: block.directive.reason }, () => {});
            continue;
          }
          const needsSqlite3 = block.lines.some((line) => /^(?:\$ )?sqlite3\s/.test(line.trim()));
          if (needsSqlite3 && !hasSqlite3 && process.env.CI !== 'true') {
            await t.test(name, { skip: 'sqlite3 is not installed here (CI installs it: .ci/run)' }, () => {});
            continue;
          }
          await t.test(name, async (sub) => {
            if (block.directive?.kind === 'postgres') {
              const server = await postgresOrSkip(sub);
              if (server === null) return;
              const hostAndPort = new URL(server.adminUrl).host;
              block.lines = block.lines.map((line) => onTestServer(line, hostAndPort));
            }
            if (block.lang === 'sh') await runShellBlock(block, exports, cwd);
            else if (block.lang === 'console') await runConsoleBlock(block, exports, cwd);
            else await runSqlBlock(block, cwd);
          });
        }
      } finally {
        rmSync(cwd, { recursive: true, force: true });
      }
    });
  }
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of withoutCode(text).split('\n')) {
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (heading === null) continue;
    const base = slug(heading[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** The text without fenced blocks, so that code is never read as a heading or a link. */
function withoutCode(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```\s*$/gm, '');
}

test('every relative link in README.md and docs/ reaches a file, and its #anchor a heading there', () => {
  const broken: string[] = [];
  for (const page of PAGES) {
    const text = withoutCode(readFileSync(join(ROOT, page), 'utf8')).replace(/`[^`\n]*`/g, '``');
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (/^[a-z]+:/i.test(target)) continue;
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const path = file === '' ? join(ROOT, page) : resolve(dirname(join(ROOT, page)), file);
      if (!existsSync(path)) {
        broken.push(`${page}: ${target} (no file ${relative(ROOT, path)})`);
        continue;
      }
      if (anchor !== undefined && !anchors(readFileSync(path, 'utf8')).has(anchor)) {
        broken.push(`${page}: ${target} (no such heading)`);
      }
    }
  }
  assert.deepEqual(broken, []);
});
