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

describe('FileTraceLog.whenSize (the uploader wakes once a full piece is waiting)', () => {
  it('resolves once the stored size reaches the mark, not before', async () => {
    const log = new FileTraceLog(join(dir, 't'), 1 << 20);
    let woke = false;
    const waiting = log.whenSize(10, new AbortController().signal).then(() => (woke = true));
    log.append(Buffer.from('12345'));
    await Promise.resolve();
    expect(woke).toBe(false);
    log.append(Buffer.from('67890'));
    await waiting;
    expect(woke).toBe(true);
    await expect(log.whenSize(3, new AbortController().signal)).resolves.toBeUndefined(); // already there
    log.dispose();
  });

  it('rejects with the reason when its signal aborts, and forgets the waiter', async () => {
    const log = new FileTraceLog(join(dir, 't'), 1 << 20);
    const ctl = new AbortController();
    const waiting = log.whenSize(10, ctl.signal);
    ctl.abort(new Error('tick'));
    await expect(waiting).rejects.toThrow('tick');
    log.append(Buffer.alloc(20)); // nothing left to wake
    log.dispose();
  });
});
