// Before any stage (a docker job's prepare) the point a successor continues from is the whole trace GitLab
// confirmed: the successor appends after it (its CRC goes on from there, the banner is not written again).
// A successor that can only regenerate inexactly claims no checksum.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { appendsAfter } from '../../../src/core/trace.js';
import { JobTrace } from '../../../src/runner/trace/job-trace.js';

const dir = mkdtempSync(join(tmpdir(), 'fr-append-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const spool = () => join(dir, `t${n++}`);
const sum = (b: Buffer) => `crc32:${(crc32(b) >>> 0).toString(16).padStart(8, '0')}`;

describe('the whole-trace checkpoint and appending after it', () => {
  it('is offered only once GitLab confirmed every stored byte', () => {
    const t = new JobTrace(spool(), 1 << 20, { secrets: [] });
    let stored = 0;
    t.storedBytes = () => stored;
    expect(t.checkpoints.whole?.()).toBeUndefined(); // nothing stored
    t.write('Running with fleetrunner\nPreparing\n');
    expect(t.checkpoints.whole?.()).toBeUndefined(); // not confirmed yet
    stored = t.log.size;
    const c = t.checkpoints.whole?.();
    expect(c).toEqual({ stage: 0, offset: 0, bytes: t.log.size, crc: t.log.crcValue });
    expect(appendsAfter(c!)).toBe(true);
    expect(appendsAfter({ stage: 0, offset: 0, bytes: 0, crc: 0 })).toBe(false);
    expect(appendsAfter({ stage: 2, offset: 10, bytes: 40, crc: 1 })).toBe(false);
    t.log.dispose();
  });

  it('a successor appending after it ends with the checksum of the whole trace', () => {
    const first = 'Running with fleetrunner\nPulling image ...\n';
    const t1 = new JobTrace(spool(), 1 << 20, { secrets: [] });
    t1.write(first);
    t1.storedBytes = () => t1.log.size;
    const c = t1.checkpoints.whole!()!;
    t1.log.dispose();
    const t2 = new JobTrace(spool(), 1 << 20, { secrets: [] }, { resumeFrom: c });
    const rest = 'WARNING: preparing it again\nJob succeeded\n';
    t2.write(rest);
    expect(t2.log.size).toBe(Buffer.byteLength(first + rest));
    expect(t2.log.checksum()).toBe(sum(Buffer.from(first + rest)));
    t2.log.dispose();
  });

  it('an inexact continuation claims no checksum', () => {
    const t = new JobTrace(spool(), 1 << 20, { secrets: [] });
    t.write('x\n');
    expect(t.log.checksum()).toMatch(/^crc32:/);
    t.checkpoints.inexact?.();
    expect(t.log.checksum()).toBeUndefined();
    t.log.dispose();
  });
});
