import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { FileTraceLog } from '../../../src/runner/trace/file-trace-log.js';
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

describe('FileTraceLog', () => {
  it('holds small appends in memory and writes them in one piece before anything reads the file', async () => {
    const path = spool();
    const log = new FileTraceLog(path, 1 << 20);
    const reused = Buffer.alloc(5);
    for (let i = 0; i < 50; i++) log.append(reused.fill(`l${String(i).padStart(3, '0')}\n`, 0));
    expect(log.size).toBe(250);
    expect(statSync(path).size).toBe(0); // nothing written yet: one write for all fifty, below
    expect(Buffer.from(await log.read(240, 20)).toString()).toBe('l048\nl049\n');
    expect(statSync(path).size).toBe(250);
    const expected = Array.from({ length: 50 }, (_, i) => `l${String(i).padStart(3, '0')}\n`).join('');
    log.append(Buffer.from('tail\n'));
    expect(log.checksum()).toBe(`crc32:${crc32(expected + 'tail\n').toString(16).padStart(8, '0')}`);
    log.close();
    expect(readFileSync(path, 'utf8')).toBe(`${expected}tail\n`);
    const again = FileTraceLog.reopen(path, 1 << 20);
    expect([again.size, again.crcValue]).toEqual([255, crc32(`${expected}tail\n`)]);
    again.close();
  });

  it('keeps the order of held appends and large ones written at once', async () => {
    const log = new FileTraceLog(spool(), 1 << 22);
    const big = Buffer.alloc(100_000, 'b');
    log.append(Buffer.from('a'));
    log.append(big);
    log.append(Buffer.from('c'));
    log.append(Buffer.alloc(70_000, 'd'));
    const all = Buffer.from(await log.read(0, log.size)).toString();
    expect(all).toBe(`a${'b'.repeat(100_000)}c${'d'.repeat(70_000)}`);
    expect(log.crcValue).toBe(crc32(all));
    log.dispose();
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
