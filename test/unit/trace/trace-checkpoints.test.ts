// Trace checkpoints: the stored trace's first `bytes` bytes are exactly what the pipeline made of the raw
// output before `offset`, so a successor that feeds a fresh pipeline from there regenerates the rest of the
// trace byte for byte (and its CRC-32 goes on from the checkpoint's). Checked over streams with secrets,
// token prefixes, a token longer than the masker holds, and multi-byte characters split across writes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { JobTrace } from '../../../src/runner/trace/job-trace.js';
import { TraceCheckpoints } from '../../../src/runner/trace/trace-checkpoints.js';

const dir = mkdtempSync(join(tmpdir(), 'fr-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const spool = () => join(dir, `t${n++}`);

const SECRET = 'hunter2-very-secret';
const masking = { secrets: [SECRET] };

/** A deterministic pseudo-random generator (the test is reproducible). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function rawStream(rand: () => number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < 400; i++) {
    const r = rand();
    if (r < 0.1) parts.push(`secret ${SECRET} here\n`);
    else if (r < 0.15) parts.push(`token glpat-${'x'.repeat(20)} end\n`);
    else if (r < 0.25) parts.push('héllo wörld — ✓ 😀\n');
    else parts.push(`line-${i}\n`);
  }
  parts.splice(200, 0, `long glpat-${'a'.repeat(20_000)} done\n`);
  return Buffer.from(parts.join(''));
}

function chunks(buf: Buffer, rand: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const len = 1 + Math.floor(rand() * 700);
    out.push(buf.subarray(i, i + len));
    i += len;
  }
  return out;
}

/** What the trace's own spool holds (from its checkpoint on, for a continued one). */
const bytesOf = async (t: JobTrace) => Buffer.from(await t.log.read(t.log.baseOffset, t.log.size - t.log.baseOffset));

describe('trace checkpoints', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`a successor regenerates the rest of the trace byte for byte from the checkpoint (seed ${seed})`, async () => {
      const rand = rng(seed);
      const raw = rawStream(rand);
      const banner = 'Running with fleetrunner\n';
      const first = new JobTrace(spool(), 1 << 30, masking);
      let confirmed = 0;
      first.storedBytes = () => confirmed;
      first.write(banner);
      let rawEnd = 0;
      const taken: NonNullable<ReturnType<JobTrace['checkpoints']['checkpoint']>>[] = [];
      for (const c of chunks(raw, rand)) {
        first.write(c);
        rawEnd += c.length;
        first.checkpoints.mark(1, rawEnd);
        // GitLab confirms what the log held a moment ago, now and then; a checkpoint is read after it.
        if (rand() < 0.2) confirmed = Math.floor(first.log.size * rand());
        if (rand() < 0.2) {
          const ck = first.checkpoints.checkpoint();
          if (ck) taken.push(ck);
        }
      }
      first.flush();
      const whole = await bytesOf(first);
      expect(whole.includes(Buffer.from(SECRET))).toBe(false);
      expect(taken.length).toBeGreaterThan(3);
      for (const ck of taken.slice(-5)) {
        expect(ck.bytes).toBeLessThanOrEqual(whole.length);
        const next = new JobTrace(spool(), 1 << 30, masking, { resumeFrom: ck });
        next.write('the banner again: muted, GitLab has it\n');
        next.checkpoints.unmute!();
        for (const c of chunks(raw.subarray(ck.offset), rand)) next.write(c);
        next.flush();
        expect(Buffer.concat([whole.subarray(0, ck.bytes), await bytesOf(next)]).equals(whole)).toBe(true);
        expect(next.log.size).toBe(first.log.size);
        expect(next.log.checksum()).toBe(first.log.checksum());
      }
    });
  }

  it('offers only candidates GitLab has confirmed, the newest first, and keeps the last one chosen', () => {
    let size = 0;
    const points = new TraceCheckpoints({ held: () => 2, exact: () => true, size: () => size, crc: () => size * 7 });
    let stored = 0;
    points.stored = () => stored;
    expect(points.best()).toBeUndefined();
    size = 10;
    points.mark(1, 12);
    size = 20;
    points.mark(1, 22);
    size = 30;
    points.mark(2, 5);
    stored = 25;
    expect(points.best()).toEqual({ stage: 1, offset: 20, bytes: 20, crc: 140 });
    stored = 26; // nothing newer confirmed: the same answer
    expect(points.best()).toEqual({ stage: 1, offset: 20, bytes: 20, crc: 140 });
    stored = 30;
    expect(points.best()).toEqual({ stage: 2, offset: 3, bytes: 30, crc: 210 });
  });

  it('keeps, between two reads, only the newest confirmed candidate and those GitLab has not confirmed yet', () => {
    let size = 0;
    const points = new TraceCheckpoints({ held: () => 0, exact: () => true, size: () => size, crc: () => size });
    let stored = 0;
    points.stored = () => stored;
    // A line a second for a minute, GitLab confirming every third second's PATCH; no read in between.
    for (let line = 1; line <= 60; line++) {
      size = line * 40;
      points.mark(3, size);
      if (line % 3 === 0) stored = size;
    }
    // Line 57 was the newest confirmed when line 60 was marked; 58-60 were not confirmed yet.
    expect((points as unknown as { candidates: unknown[] }).candidates).toHaveLength(4);
    size = 60 * 40 + 40;
    points.mark(3, size);
    expect((points as unknown as { candidates: unknown[] }).candidates).toHaveLength(2);
    expect(points.best()).toEqual({ stage: 3, offset: 2400, bytes: 2400, crc: 2400 });
  });

  it('keeps the confirmed candidate when more than the bound wait for GitLab between two reads', () => {
    let size = 10;
    const points = new TraceCheckpoints({ held: () => 0, exact: () => true, size: () => size, crc: () => size });
    let stored = 0;
    points.stored = () => stored;
    points.mark(3, size);
    stored = 10;
    // A chatty stage: 600 more pieces before GitLab confirms any of them (the candidates are thinned).
    for (let piece = 1; piece <= 600; piece++) {
      size += 10;
      points.mark(3, size);
    }
    expect(points.best()).toEqual({ stage: 3, offset: 10, bytes: 10, crc: 10 });
  });

  it('takes no checkpoint where a fresh pipeline would differ (inside a long masked token)', () => {
    const points = new TraceCheckpoints({ held: () => 0, exact: () => false, size: () => 5, crc: () => 0 });
    points.stored = () => 100;
    points.mark(1, 5);
    expect(points.best()).toBeUndefined();
  });

  it('a continued trace reads nothing before its checkpoint and mutes until told', async () => {
    const t = new JobTrace(spool(), 1 << 20, masking, { resumeFrom: { stage: 3, offset: 0, bytes: 100, crc: 0 } });
    t.write('muted\n');
    expect(t.log.size).toBe(100);
    t.checkpoints.unmute!();
    t.write('heard\n');
    expect(t.log.size).toBe(106);
    expect((await t.log.read(50, 10)).length).toBe(0);
    expect(Buffer.from(await t.log.read(100, 6)).toString()).toBe('heard\n');
  });
});
