import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileTraceLog } from '../../../src/runner/trace/file-trace-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fr-tracelog-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('FileTraceLog.onGrowth (the uploader wakes once a full piece is waiting)', () => {
  it('tells each listener the new size after every append, until it stops listening', () => {
    const log = new FileTraceLog(join(dir, 't'), 1 << 20);
    const seen: number[] = [];
    const stop = log.onGrowth((size) => seen.push(size));
    log.append(Buffer.from('12345'));
    log.append(Buffer.from('67890'));
    expect(seen).toEqual([5, 10]);
    stop();
    log.append(Buffer.from('x'));
    expect(seen).toEqual([5, 10]);
    log.dispose();
  });

  it('counts the output-limit notice as growth too', () => {
    const log = new FileTraceLog(join(dir, 't'), 8);
    const seen: number[] = [];
    log.onGrowth((size) => seen.push(size));
    log.append(Buffer.from('0123456789'));
    expect(seen[0]).toBe(8);
    expect(seen.at(-1)).toBe(log.size);
    expect(log.size).toBeGreaterThan(8);
    log.dispose();
  });
});
