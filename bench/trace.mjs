// Trace pipeline throughput: 100 MB of job output through UTF-8 repair → masking → limit → spool,
// with masking on (20 masked values + token prefixes). Compares against a baseline in the same run:
// the same bytes through the spool alone (no masking), so the masking cost is visible.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobTrace } from '../dist/runner/trace/job-trace.js';
import { FileTraceLog } from '../dist/runner/trace/file-trace-log.js';

const TOTAL = 100 * 1024 * 1024;
/** A token-shaped value made at run time (the masker finds it by its prefix). */
const PAT = `glpat-${randomBytes(15).toString('base64url')}`;
const CHUNK = 32 * 1024; // what an SSH channel typically delivers

function makeChunk(secrets) {
  const lines = [];
  let size = 0;
  for (let i = 0; size < CHUNK; i++) {
    const line = i % 97 === 0 ? `token ${secrets[i % secrets.length]} and ${PAT} in a line\n` : `[${i}] compiling module_${i % 1000}.ts … ok ✓ 12ms\n`;
    lines.push(line);
    size += Buffer.byteLength(line);
  }
  return Buffer.from(lines.join('')).subarray(0, CHUNK);
}

export async function benchTrace() {
  const dir = mkdtempSync(join(tmpdir(), 'fr-bench-trace-'));
  const secrets = Array.from({ length: 20 }, (_, i) => `${Math.random().toString(36).slice(2, 10)}${i}${"x".repeat(i)}`); // random, like real values
  const chunk = makeChunk(secrets);
  try {
    // Baseline: spool only.
    const base = new FileTraceLog(join(dir, 'base.log'), TOTAL * 2);
    let t0 = process.hrtime.bigint();
    for (let n = 0; n < TOTAL; n += CHUNK) base.append(chunk);
    const baseSec = Number(process.hrtime.bigint() - t0) / 1e9;
    base.dispose();

    // Full pipeline, limit high enough to store everything (worst case for the spool).
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let peakRss = rss0;
    let peakBuffered = 0;
    const trace = new JobTrace(join(dir, 'masked.log'), TOTAL * 2, { secrets });
    t0 = process.hrtime.bigint();
    let i = 0;
    for (let n = 0; n < TOTAL; n += CHUNK) {
      trace.write(chunk);
      peakBuffered = Math.max(peakBuffered, trace.bufferedBytes);
      if ((i++ & 63) === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
    trace.flush();
    const sec = Number(process.hrtime.bigint() - t0) / 1e9;
    const stored = await trace.log.read(0, 4096);
    if (Buffer.from(stored).includes(secrets[0])) throw new Error('bench: a secret reached the trace');
    trace.log.dispose();
    const mb = TOTAL / (1024 * 1024);
    return [
      { name: 'trace_throughput_masked', value: +(mb / sec).toFixed(1), unit: 'MB/s', floor: +(mb / baseSec).toFixed(1), what: 'in-process: UTF-8 repair, masking, limit, spool; floor: the spool alone' },
      { name: 'trace_throughput_spool_only_baseline', value: +(mb / baseSec).toFixed(1), unit: 'MB/s' },
      { name: 'trace_peak_buffered_per_job', value: peakBuffered, unit: 'bytes' },
      { name: 'trace_rss_growth_100MB_job', value: +((peakRss - rss0) / (1024 * 1024)).toFixed(1), unit: 'MiB' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
