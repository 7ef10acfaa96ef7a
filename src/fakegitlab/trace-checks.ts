// Trace-level rules: Content-Range parsing as Rails does it, secret detection across PATCH boundaries
// (check 24), Rails' own length-preserving masking of the job and registration tokens, the output limit
// (check 25) and the PATCH cadence heuristic (soft check 13).
import type { FakeContext } from './context.js';
import type { JobRecord } from './records.js';

export interface ContentRange {
  start: number;
  end?: number;
  wellFormed: boolean;
}

/** Rails: `content_range.split('-')[0].to_i`; only start matters. Well-formed is a bare `<start>-<end>`. */
export function parseContentRange(value: string): ContentRange {
  const m = /^(\d+)-(\d+)$/.exec(value);
  if (m) return { start: Number(m[1]), end: Number(m[2]), wellFormed: true };
  const lead = /^\s*(\d+)/.exec(value.split('-')[0] ?? '');
  return { start: lead ? Number(lead[1]) : 0, wellFormed: false };
}

interface Secret {
  label: string;
  bytes: Buffer;
}

function secretsOf(ctx: FakeContext, job: JobRecord): Secret[] {
  const out: Secret[] = [{ label: 'the job token', bytes: Buffer.from(job.token) }];
  const vars = job.payload?.variables ?? [];
  for (const v of vars) {
    // Rails may send a null value (and a fixture overlay anything): only non-empty strings can leak.
    if (v?.masked && typeof v.value === 'string' && v.value.length > 0 && v.value !== job.token) {
      out.push({ label: `the value of masked variable ${v.key}`, bytes: Buffer.from(v.value) });
    }
  }
  for (const t of ctx.runners.runnerTokens()) out.push({ label: 'a runner or registration token', bytes: Buffer.from(t) });
  return out;
}

const FULL_PATCH = 1024 * 1024;
const GLPAT = /glpat-[A-Za-z0-9._=-]{8,}/;

/** Bytes of a PATCH looked at per latin1 string. A string of a whole 1 MiB piece lives in V8's large-object
 *  space, fresh memory each time: on this kind of host touching fresh memory costs ~3 ms per MiB, more
 *  than the search. Strings of 64 KiB come from the young generation, whose memory is reused. */
const SCAN_WINDOW = 64 * 1024;

/** The job's needles in one pattern over latin1 text (one char per byte): every secret's bytes and the
 *  glpat- rule. Written here, not taken from the runner's masker: the fake checks the runner, so it does
 *  not share its code. Compiled again only when the set of secrets changes. */
const patterns = new WeakMap<JobRecord, { key: string; pattern: RegExp }>();

function anyNeedle(job: JobRecord, secrets: Secret[]): RegExp {
  const texts = secrets.map((s) => s.bytes.toString('latin1'));
  const key = JSON.stringify(texts);
  const known = patterns.get(job);
  if (known?.key === key) return known.pattern;
  const escaped = texts.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp([...escaped, GLPAT.source].join('|'));
  patterns.set(job, { key, pattern });
  return pattern;
}

/** Whether `chunk` or `seam` holds any needle: one regex pass over the chunk in overlapping windows (a
 *  needle of up to `overlap` bytes starting in a window lies wholly in its text). */
function mayHoldSecret(pattern: RegExp, chunk: Buffer, seam: Buffer, overlap: number): boolean {
  if (pattern.test(seam.toString('latin1'))) return true;
  for (let at = 0; at < chunk.length; at += SCAN_WINDOW) {
    if (pattern.test(chunk.toString('latin1', at, Math.min(chunk.length, at + SCAN_WINDOW + overlap)))) return true;
  }
  return false;
}

/** Looks at the new chunk and at the stored tail joined to its start, so that a secret split across
 *  PATCHes is still found (without copying the whole chunk behind the tail). A clean chunk, the usual
 *  case, costs one regex pass; only one that holds a needle is searched secret by secret, to name each. */
export function scanForSecrets(ctx: FakeContext, job: JobRecord, chunk: Buffer): void {
  const secrets = secretsOf(ctx, job);
  const longest = Math.max(64, ...secrets.map((s) => s.bytes.length));
  const seam = Buffer.concat([job.traceStore.tail(longest), chunk.subarray(0, longest)]);
  if (!mayHoldSecret(anyNeedle(job, secrets), chunk, seam, longest)) return;
  const contains = (needle: Buffer | string): boolean => chunk.indexOf(needle) >= 0 || seam.indexOf(needle) >= 0;
  for (const s of secrets) {
    if (job.secretsReported.has(s.label) || !contains(s.bytes)) continue;
    job.secretsReported.add(s.label);
    ctx.violations.add(24, `job ${job.id}: the trace contains ${s.label}; it must appear as [MASKED]`);
  }
  if (!job.secretsReported.has('glpat') && contains('glpat-') && (GLPAT.test(seam.toString('latin1')) || GLPAT.test(chunk.toString('latin1')))) {
    job.secretsReported.add('glpat');
    ctx.violations.add(24, `job ${job.id}: the trace contains a glpat- personal access token; it must be masked`);
  }
}

/** Rails `hide_secrets`: the registration token and the job token become x's of the same length, per chunk. */
export function railsMask(chunk: Buffer, tokens: string[]): Buffer {
  let out = chunk;
  for (const t of tokens) {
    const needle = Buffer.from(t);
    if (needle.length === 0) continue;
    let i = out.indexOf(needle);
    if (i < 0) continue;
    out = Buffer.from(out); // copy before writing
    while (i >= 0) {
      out.fill('x', i, i + needle.length);
      i = out.indexOf(needle, i + needle.length);
    }
  }
  return out;
}

/** Check 25: the trace stays within output_limit plus the runner's notice. */
export function checkOutputLimit(ctx: FakeContext, job: JobRecord): void {
  const limit = ctx.opts.outputLimitBytes;
  if (limit === undefined || job.secretsReported.has('output-limit')) return;
  if (job.traceStore.length > limit + 512) {
    job.secretsReported.add('output-limit');
    ctx.violations.add(25, `job ${job.id}: trace is ${job.traceStore.length} bytes, over output_limit ${limit} plus the notice`);
  }
}

/** Soft check 13: PATCH ticks (except the final flush) come about one update interval apart. Full 1 MiB
 *  PATCHes may come sooner, and be followed at once: the runner has a backlog, and sending it sooner is no
 *  more traffic. */
export function checkPatchCadence(ctx: FakeContext, job: JobRecord): void {
  const patches = job.patches;
  const intervalMs = Math.min(job.intervalS, 900) * 1000;
  for (let i = 1; i < patches.length - 1; i++) {
    const prev = patches[i - 1]!;
    const cur = patches[i]!;
    if (prev.status !== 202) continue; // retries after errors or 416 have their own timing
    if (prev.length >= FULL_PATCH || cur.length >= FULL_PATCH) continue;
    const gap = cur.at - prev.at;
    if (gap < 0.5 * intervalMs) {
      ctx.violations.warn(13, `job ${job.id}: PATCHes ${gap} ms apart with an update interval of ${job.intervalS} s`);
      return;
    }
  }
}
