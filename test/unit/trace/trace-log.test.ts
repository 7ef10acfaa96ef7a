import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { JobTrace } from '../../../src/runner/trace/job-trace.js';
import { Utf8Repair } from '../../../src/runner/trace/utf8.js';

const dirs: string[] = [];
function spool(): string {
  const d = mkdtempSync(join(tmpdir(), 'fr-trace-'));
  dirs.push(d);
  return join(d, 'trace.log');
}
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('JobTrace', () => {
  it('stores masked bytes with GitLab checksum and size', async () => {
    const t = new JobTrace(spool(), 4096, { secrets: ['s3cret-value'] });
    t.write('hello s3cr');
    t.write('et-value world\n');
    t.flush();
    const stored = Buffer.from(await t.log.read(0, 1000));
    expect(stored.toString()).toBe('hello [MASKED] world\n');
    expect(t.log.size).toBe(stored.length);
    expect(t.log.checksum()).toBe(`crc32:${crc32(stored).toString(16).padStart(8, '0')}`);
    t.log.dispose();
  });

  it('cuts at the output limit on a UTF-8 boundary and appends GitLab notice once', async () => {
    const t = new JobTrace(spool(), 10, { secrets: [] });
    t.write('abcdefghi€xyz'); // € is 3 bytes, would straddle the 10-byte limit
    t.write('more and more');
    t.flush();
    const text = Buffer.from(await t.log.read(0, 10_000)).toString();
    expect(text.startsWith('abcdefghi\n')).toBe(true);
    expect(text).toContain("Job's log exceeded limit of 10 bytes.");
    expect(text).toContain('Job execution will continue but no more output will be collected.');
    expect(text).not.toContain('more and more');
    t.log.dispose();
  });

  it('reads back arbitrary ranges for re-sends', async () => {
    const t = new JobTrace(spool(), 1 << 20, { secrets: [] });
    for (let i = 0; i < 100; i++) t.write(`line ${i}\n`);
    t.flush();
    expect(Buffer.from(await t.log.read(5, 8)).toString()).toBe('0\nline 1');
    expect((await t.log.read(t.log.size, 10)).length).toBe(0);
    t.log.dispose();
  });
});

describe('Utf8Repair', () => {
  it('keeps characters split across writes and replaces invalid bytes', () => {
    const out: Buffer[] = [];
    const r = new Utf8Repair((b) => out.push(Buffer.from(b)));
    const euro = Buffer.from('€');
    r.write(euro.subarray(0, 1));
    r.write(Buffer.concat([euro.subarray(1), Buffer.from([0xff]), Buffer.from('ok')]));
    r.flush();
    expect(Buffer.concat(out).toString()).toBe('€\uFFFDok');
  });
});
