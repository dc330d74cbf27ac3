import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describeConfig, loadConfig, loadConfigChecked, requireSqlitePath } from '../src/config.ts';
import { TierwatchError } from '../src/errors.ts';

const SECRET = 'pa55-w0rd-never-shown';
const URL_WITH_PASSWORD = `postgres://tierwatch:${SECRET}@db.example:5432/history?sslmode=require`;

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof TierwatchError, `expected a TierwatchError, got ${String(error)}`);
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.message;
  }
  assert.fail('expected a CONFIG_INVALID error');
}

function withFile<T>(text: string, use: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'tierwatch-dburl-'));
  try {
    const file = join(dir, 'db-url');
    writeFileSync(file, text);
    return use(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('TIERWATCH_DB chooses the history', () => {
  it('a path (or nothing) is SQLite; postgres:// and postgresql:// are Postgres', () => {
    assert.deepEqual(loadConfig({}).database, { kind: 'sqlite', path: './data/tierwatch.db' });
    assert.deepEqual(loadConfig({ TIERWATCH_DB: '/var/lib/t.db' }).database, { kind: 'sqlite', path: '/var/lib/t.db' });
    for (const scheme of ['postgres', 'postgresql', 'POSTGRES']) {
      const database = loadConfig({ TIERWATCH_DB: `${scheme}://db.example/history` }).database;
      assert.equal(database.kind, 'postgres');
      assert.equal(database.kind === 'postgres' && database.url.reveal(), `${scheme}://db.example/history`);
    }
  });

  it('the --db flag overrides both variables', () => {
    const config = loadConfig(
      { TIERWATCH_DB: 'ignored.db', TIERWATCH_DB_FILE: '/nonexistent' },
      { TIERWATCH_DB: { value: 'flag.db', flag: '--db' } },
    );
    assert.deepEqual(config.database, { kind: 'sqlite', path: 'flag.db' });
  });

  it('TIERWATCH_DB_FILE holds the URL, read once and trimmed; it is a known setting', () => {
    withFile(`${URL_WITH_PASSWORD}\n`, (file) => {
      const checked = loadConfigChecked({ TIERWATCH_DB_FILE: file });
      assert.deepEqual(checked.unknown, []);
      const database = checked.config.database;
      assert.equal(database.kind, 'postgres');
      assert.equal(database.kind === 'postgres' && database.url.reveal(), URL_WITH_PASSWORD);
      assert.equal(database.kind === 'postgres' && database.url.source, 'TIERWATCH_DB_FILE');
    });
  });

  it('refuses both variables, a file without a postgres:// URL, an unparsable URL and one without a host', () => {
    assert.match(
      configError(() => loadConfig({ TIERWATCH_DB: 'a.db', TIERWATCH_DB_FILE: '/x' })),
      /Set either `TIERWATCH_DB` or `TIERWATCH_DB_FILE`, not both/,
    );
    withFile('./data/tierwatch.db\n', (file) => {
      assert.match(
        configError(() => loadConfig({ TIERWATCH_DB_FILE: file })),
        /`TIERWATCH_DB_FILE` names ".*db-url", which does not hold a postgres:\/\/ URL/,
      );
    });
    assert.match(
      configError(() => loadConfig({ TIERWATCH_DB_FILE: '/nonexistent/url' })),
      /`TIERWATCH_DB_FILE` names "\/nonexistent\/url"/,
    );
    const unparsable = configError(() => loadConfig({ TIERWATCH_DB: `postgres://u:${SECRET}@[bad/h` }));
    assert.match(unparsable, /`TIERWATCH_DB` holds a postgres:\/\/ URL that cannot be parsed/);
    assert.doesNotMatch(unparsable, new RegExp(SECRET));
    assert.match(
      configError(() => loadConfig({ TIERWATCH_DB: 'postgres:///history' })),
      /without a host/,
    );
  });

  it('never shows the password: not in describeConfig, JSON, util.inspect, String() or a refusal', () => {
    const config = loadConfig({ TIERWATCH_DB: URL_WITH_PASSWORD });
    const shown = [
      JSON.stringify(describeConfig(config)),
      JSON.stringify(config),
      inspect(config, { depth: 10 }),
      String(config.database.kind === 'postgres' && config.database.url),
    ];
    for (const text of shown) {
      assert.doesNotMatch(text, new RegExp(SECRET), text);
      assert.match(text, /db\.example:5432\/history/, text);
    }
    const refused = configError(() => requireSqlitePath(config.database));
    assert.match(refused, /works on a SQLite history only.*`TIERWATCH_DB` names Postgres \(postgres:\/\/tierwatch@db/);
    assert.doesNotMatch(refused, new RegExp(SECRET));
  });
});
