import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { writeRecords, type RecordShape } from '../src/output/stream.ts';

const shape: RecordShape<{ n: number; s: string | null }> = {
  json: (row) => row,
  csvColumns: ['n', 's'],
  csv: (row) => [row.n, row.s],
};

async function capture(
  format: 'json' | 'ndjson' | 'csv',
  rows: Array<{ n: number; s: string | null }>,
): Promise<string> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  await writeRecords(out, format, rows, shape);
  return text;
}

describe('writeRecords', () => {
  it('writes a JSON array, NDJSON lines and quoted CSV, and empty answers as [] / nothing / a header', async () => {
    const rows = [
      { n: 1, s: 'a,"b"' },
      { n: 0.6666666666666666, s: null },
    ];
    assert.deepEqual(JSON.parse(await capture('json', rows)), rows);
    assert.equal(await capture('ndjson', rows), '{"n":1,"s":"a,\\"b\\""}\n{"n":0.6666666666666666,"s":null}\n');
    assert.equal(await capture('csv', rows), 'n,s\n1,"a,""b"""\n0.6666666666666666,\n');
    assert.equal(await capture('json', []), '[]\n');
    assert.equal(await capture('ndjson', []), '');
    assert.equal(await capture('csv', []), 'n,s\n');
  });

  it('streams a large answer through a slow reader without losing a row', async () => {
    const out = new PassThrough({ highWaterMark: 1024 });
    let text = '';
    out.on('data', (chunk: Buffer) => {
      out.pause();
      text += chunk.toString('utf8');
      setImmediate(() => out.resume());
    });
    const rows = Array.from({ length: 20_000 }, (_, n) => ({ n, s: `row ${n}` }));
    await writeRecords(out, 'ndjson', rows, shape);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 20_000);
    assert.deepEqual(JSON.parse(lines.at(-1)!), { n: 19_999, s: 'row 19999' });
  });

  it('stops quietly, and stops reading rows, when the reader goes away (EPIPE)', async () => {
    let writes = 0;
    const out = new Writable({
      highWaterMark: 16,
      write(_chunk, _encoding, callback) {
        writes++;
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    let produced = 0;
    function* rows() {
      for (let n = 0; n < 1_000_000; n++) {
        produced++;
        yield { n, s: 'x'.repeat(100) };
      }
    }
    await writeRecords(out, 'ndjson', rows(), shape);
    assert.equal(writes, 1);
    assert.ok(produced < 2_000, `stopped early (${produced} rows produced)`);
  });
});
