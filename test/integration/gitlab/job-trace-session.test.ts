import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failed, success } from '../../../src/core/outcome.js';
import { buildFeatures } from '../../../src/gitlab/features.js';
import { buildRunnerInfo } from '../../../src/gitlab/info.js';
import { ACK_ATTEMPTS, JobTraceSession, type JobTraceSessionOptions, type TraceAbortReason } from '../../../src/gitlab/job-trace-session.js';
import { FetchRequester } from '../../../src/gitlab/requester.js';
import { RunnerApi } from '../../../src/gitlab/runner-api.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryTrace } from './helpers/memory-trace.js';
import { ScriptedGitLab, type RecordedRequest, type Reply } from './helpers/scripted-gitlab.js';
import { VirtualClock } from './helpers/virtual-clock.js';

/** What GitLab sends (Rails' shape) and what the session gets once the boundary has read it. */
const JOB_WIRE = { id: 7, token: `glcbt-${randomBytes(12).toString('hex')}`, features: { failure_reasons: ['script_failure', 'image_pull_failure'] } };
const JOB = jobPayload(JOB_WIRE);
const MiB = 1024 * 1024;
const info = buildRunnerInfo({ version: '0.1.0', platform: 'linux', arch: 'x64', features: buildFeatures([]) });

let gitlab: ScriptedGitLab;
let clock: VirtualClock;
let api: RunnerApi;
/** What GitLab has stored for job 7, as Rails' append_build_trace_service keeps it. */
let stored: Buffer;
/** Override for the next PATCH answers / PUT answers (consumed in order); default is Rails' behaviour. */
let patchReplies: Array<Reply | ((r: RecordedRequest) => Reply)>;
let putReplies: Reply[];
/** Answers to final PUTs (state success/failed), so a keep-alive in flight cannot take them. */
let finalReplies: Reply[];

beforeEach(async () => {
  clock = new VirtualClock();
  stored = Buffer.alloc(0);
  patchReplies = [];
  putReplies = [];
  finalReplies = [];
  gitlab = await new ScriptedGitLab(() => clock.now()).start();
  gitlab.handle((r) => {
    if (r.method === 'PATCH' && r.path === '/jobs/7/trace') {
      const override = patchReplies.shift();
      if (override) return typeof override === 'function' ? override(r) : override;
      const start = Number(/^(\d+)-(\d+)$/.exec(r.headers['content-range'] ?? '')?.[1]);
      if (start !== stored.length) return { status: 416, headers: { Range: `0-${stored.length}` } };
      stored = Buffer.concat([stored, r.body]);
      return { status: 202, headers: { Range: `0-${stored.length}`, 'Job-Status': 'running' } };
    }
    if (r.method === 'PUT' && r.path === '/jobs/7') {
      const queue = r.json.state === 'running' ? putReplies : finalReplies;
      return queue.shift() ?? { status: 200, headers: { 'Job-Status': 'running' } };
    }
    return undefined;
  });
  api = new RunnerApi({ url: gitlab.url, requester: new FetchRequester(), userAgent: 'fleetrunner test' });
});
afterEach(async () => {
  expect(gitlab.unexpected).toEqual([]);
  await gitlab.close();
});

function session(trace: MemoryTrace, extra: Partial<JobTraceSessionOptions> = {}) {
  return new JobTraceSession({ api, job: JOB, trace, clock, info, timing: { finalUpdateBackoffMaxMs: 10_000 }, ...extra });
}
const patches = () => gitlab.requests.filter((r) => r.method === 'PATCH');
const puts = () => gitlab.requests.filter((r) => r.method === 'PUT');
const ranges = () => patches().map((r) => r.headers['content-range']);
/** Waits (real time, briefly) until the session has processed what the server answered. */
async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !pred(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(pred()).toBe(true);
}
const crc = (b: Buffer) => `crc32:${crc32(b).toString(16).padStart(8, '0')}`;

describe('acknowledgement (PUT state=running after the 201)', () => {
  it.each<[string, Reply, string]>([
    ['200 → running', { status: 200, headers: { 'Job-Status': 'running' } }, 'running'],
    ['403 + Job-Status: canceled → dropped silently', { status: 403, headers: { 'Job-Status': 'canceled' } }, 'drop'],
    ['200 + Job-Status: canceled → dropped (nothing left to report)', { status: 200, headers: { 'Job-Status': 'canceled' } }, 'drop'],
    ['403 → dropped silently', { status: 403 }, 'drop'],
    ['404 → dropped silently', { status: 404 }, 'drop'],
    ['200 + Job-Status: canceling → canceled', { status: 200, headers: { 'Job-Status': 'canceling' } }, 'canceled'],
    ['500 → run anyway', { status: 500 }, 'running'],
  ])('%s', async (_n, reply, expected) => {
    putReplies.push(reply);
    expect(await session(new MemoryTrace()).acknowledge()).toBe(expected);
    const ack = puts()[0]!;
    expect(ack.headers['job-token']).toBe(JOB.token);
    expect(ack.json).toMatchObject({ token: JOB.token, state: 'running' });
    expect(ack.json).not.toHaveProperty('output');
  });
});

describe('acknowledgement without an answer', () => {
  it('is sent again until GitLab answers, so the first PATCH never comes before it (check 7)', async () => {
    // Each attempt is dropped twice: the transport itself sends a PUT once more on a new connection.
    putReplies.push(...Array.from({ length: 4 }, () => ({ status: 0, drop: true })));
    const trace = new MemoryTrace('hello\n');
    const s = session(trace);
    expect(await s.acknowledge()).toBe('running');
    expect(puts().map((p) => p.json.state)).toEqual(['running', 'running', 'running', 'running', 'running']);
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH');
    expect(await s.finish(success)).toMatchObject({ accepted: true });
    const order = gitlab.requests.map((r) => `${r.method} ${r.json?.state ?? r.headers['content-range']}`);
    expect(order.slice(0, 6)).toEqual([...Array.from({ length: 5 }, () => 'PUT running'), 'PATCH 0-5']);
  });

  it('runs the job anyway after the last attempt, as gitlab-runner does', async () => {
    putReplies.push(...Array.from({ length: 2 * ACK_ATTEMPTS }, () => ({ status: 0, drop: true })));
    expect(await session(new MemoryTrace()).acknowledge()).toBe('running');
    expect(puts()).toHaveLength(2 * ACK_ATTEMPTS);
  });
});

describe('trace PATCHes while the job runs', () => {
  it('sends contiguous pieces with a bare Content-Range and text/plain, starting at 0', async () => {
    const trace = new MemoryTrace('hello\n');
    const s = session(trace);
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH');
    trace.append('world\n');
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range'] === '6-11');
    trace.append('!');
    expect(await s.finish(success)).toEqual({ accepted: true, failedRounds: 0, lastStatus: 200 });
    expect(ranges()).toEqual(['0-5', '6-11', '12-12']);
    for (const p of patches()) {
      expect(p.headers['content-type']).toBe('text/plain');
      expect(p.headers['job-token']).toBe(JOB.token);
      expect(p.query.get('debug_trace')).toBe('false');
    }
    expect(stored.toString()).toBe('hello\nworld\n!');
    expect(patches()[0]!.at! - Date.UTC(2025, 0, 1)).toBe(3000); // first tick after one interval
  });

  it('marks debug traces with debug_trace=true', async () => {
    await session(new MemoryTrace('+ set -x\n'), { debugTrace: true }).finish(success);
    expect(patches()[0]!.query.get('debug_trace')).toBe('true');
  });

  it('splits a 3 MiB trace into ≤ 1 MiB PATCHes: a backlog of full pieces back to back, the rest on the next tick', async () => {
    const trace = new MemoryTrace(Buffer.alloc(3 * MiB + 10, 'x'));
    const s = session(trace);
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range'] === `${3 * MiB}-${3 * MiB + 9}`);
    trace.append('more\n');
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range'] === `${3 * MiB + 10}-${3 * MiB + 14}`);
    await s.finish(success);
    expect(ranges()).toEqual([`0-${MiB - 1}`, `${MiB}-${2 * MiB - 1}`, `${2 * MiB}-${3 * MiB - 1}`, `${3 * MiB}-${3 * MiB + 9}`, `${3 * MiB + 10}-${3 * MiB + 14}`]);
    const at = patches().map((p) => p.at! - Date.UTC(2025, 0, 1));
    // A full piece was waiting from the start, 2 MiB + 10 B after the first, 1 MiB + 10 B after the
    // second: no wait; 10 B after the third: they wait for the next tick, and what came after for the one after.
    expect(at).toEqual([0, 0, 0, 3000, 6000]);
    expect(patches().every((p) => p.body.length > 0 && p.body.length <= MiB)).toBe(true);
    expect(stored.equals(trace.bytes)).toBe(true);
  });

  it('does not wait out the interval once a full piece is waiting', async () => {
    const trace = new MemoryTrace();
    const s = session(trace);
    s.start();
    trace.append(Buffer.alloc(MiB + MiB / 2, 'x')); // a job writing fast
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range'] === `${MiB}-${MiB + MiB / 2 - 1}`);
    await s.finish(success);
    // The full piece at once; the half piece left waits for the tick.
    expect(patches().map((p) => p.at! - Date.UTC(2025, 0, 1))).toEqual([0, 3000]);
    expect(stored.equals(trace.bytes)).toBe(true);
  });

  it('continues at N after 202 Range: 0-N', async () => {
    // GitLab stored less than we sent (it says so in Range): the next PATCH starts where it is.
    patchReplies.push((r) => {
      stored = Buffer.concat([stored, r.body.subarray(0, 4)]);
      return { status: 202, headers: { Range: '0-4' } };
    });
    const trace = new MemoryTrace('0123456789');
    const s = session(trace);
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range'] === '4-9');
    await s.finish(success);
    expect(ranges()).toEqual(['0-9', '4-9']);
    expect(stored.toString()).toBe('0123456789');
  });

  it('after 416 resumes exactly at the Range end', async () => {
    stored = Buffer.from('01234'); // e.g. a previous attempt already stored 5 bytes
    const trace = new MemoryTrace('0123456789');
    const s = session(trace);
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range'] === '5-9');
    await s.finish(success);
    expect(ranges()).toEqual(['0-9', '5-9']);
    expect(stored.toString()).toBe('0123456789');
  });

  it('follows X-GitLab-Trace-Update-Interval, capped at 900 s', async () => {
    patchReplies.push((r) => {
      stored = Buffer.concat([stored, r.body]);
      return { status: 202, headers: { Range: `0-${stored.length}`, 'X-GitLab-Trace-Update-Interval': '10' } };
    });
    const trace = new MemoryTrace('a');
    const s = session(trace);
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH');
    trace.append('b');
    patchReplies.push((r) => {
      stored = Buffer.concat([stored, r.body]);
      return { status: 202, headers: { Range: `0-${stored.length}`, 'X-GitLab-Trace-Update-Interval': '5000' } };
    });
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range'] === '1-1');
    trace.append('c'); // before the answer is read: the next tick, one capped interval later, sends it
    await until(() => s.updateIntervalMs === 900_000);
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range'] === '2-2');
    const at = patches().map((p) => p.at!);
    expect([at[1]! - at[0]!, at[2]! - at[1]!]).toEqual([10_000, 900_000]);
    await s.finish(success);
  });

  it('403 on PATCH aborts: onAbort once, periodic traffic stops, then at most one PATCH and one PUT', async () => {
    const aborts: TraceAbortReason[] = [];
    patchReplies.push({ status: 403, headers: { 'Job-Status': 'failed' } }, { status: 403 });
    finalReplies.push({ status: 403 });
    const trace = new MemoryTrace('abc');
    const s = session(trace, { onAbort: (r) => aborts.push(r) });
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH');
    trace.append('def');
    await until(() => aborts.length > 0);
    for (let i = 0; i < 20; i++) await clock.sleep(0); // let ticks run if they (wrongly) would
    expect(patches()).toHaveLength(1);
    expect(aborts).toEqual([{ cause: 'failed', status: 403, jobStatus: 'failed' }]);
    expect(await s.finish(failed('script_failure', undefined, 1))).toMatchObject({ accepted: false, failedRounds: 0, lastStatus: 403, ended: { status: 403 } });
    expect([patches().length, puts().length]).toEqual([2, 1]);
  });

  it('Job-Status: canceled on a 202 aborts', async () => {
    const aborts: TraceAbortReason[] = [];
    patchReplies.push({ status: 202, headers: { Range: '0-3', 'Job-Status': 'canceled' } });
    const s = session(new MemoryTrace('abc'), { onAbort: (r) => aborts.push(r) });
    s.start();
    await until(() => aborts.length > 0);
    await s.stop();
    expect(aborts).toEqual([{ cause: 'canceled', status: 202, jobStatus: 'canceled' }]);
    expect(s.aborted).toEqual(aborts[0]);
  });

  it('Job-Status: canceling calls onCancel once and keeps sending the trace', async () => {
    let cancels = 0;
    const canceling = (r: RecordedRequest): Reply => {
      stored = Buffer.concat([stored, r.body]);
      return { status: 202, headers: { Range: `0-${stored.length}`, 'Job-Status': 'canceling' } };
    };
    patchReplies.push(canceling, canceling);
    const trace = new MemoryTrace('abc');
    const s = session(trace, { onCancel: () => cancels++ });
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH');
    trace.append('after_script output');
    await gitlab.waitFor((r) => r.method === 'PATCH' && r.headers['content-range']!.startsWith('3-'));
    expect(await s.finish(failed('job_canceled'))).toMatchObject({ accepted: true });
    expect(cancels).toBe(1);
    expect(puts().at(-1)!.json).toMatchObject({ state: 'failed', failure_reason: 'unknown_failure' });
  });

  it('404 on PATCH while running: the same piece goes again on the next tick, nothing aborts', async () => {
    const aborts: TraceAbortReason[] = [];
    patchReplies.push({ status: 404 });
    const trace = new MemoryTrace('abc');
    const s = session(trace, { onAbort: (r) => aborts.push(r) });
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH' && patches().length === 2);
    expect(await s.finish(success)).toMatchObject({ accepted: true });
    // gitlab-runner's incremental update keeps its offset after a 404 (network/trace.go): 0-2 twice, and
    // once it went through, nothing is left for the final flush.
    expect(patches().map((p) => p.headers['content-range'])).toEqual(['0-2', '0-2']);
    expect(aborts).toEqual([]);
    expect(puts()).toHaveLength(1);
  });

  it('404 on PATCH in the final flush ends that flush; the final PUT goes, and a later round PATCHes again', async () => {
    const aborts: TraceAbortReason[] = [];
    const trace = new MemoryTrace('abc');
    const s = session(trace, { onAbort: (r) => aborts.push(r) });
    // Not started: the final round is the first to PATCH.
    patchReplies.push({ status: 404 });
    finalReplies.push({ status: 202, headers: { 'X-GitLab-Trace-Update-Interval': '3' } });
    expect(await s.finish(success)).toMatchObject({ accepted: true });
    // Round 1: PATCH 404, PUT 202 (GitLab still persisting); round 2: the same piece again, then PUT 200.
    const order = gitlab.requests.filter((r) => r.method === 'PATCH' || r.method === 'PUT').map((r) => (r.method === 'PATCH' ? `PATCH ${r.headers['content-range']}` : `PUT ${r.json.state}`));
    expect(order).toEqual(['PATCH 0-2', 'PUT success', 'PATCH 0-2', 'PUT success']);
    expect(aborts).toEqual([]);
  });

  it('a silent job gets a keep-alive PUT running with checksum and bytesize after 30 s', async () => {
    const trace = new MemoryTrace();
    const s = session(trace);
    const t0 = clock.now();
    s.start();
    const keepAlive = await gitlab.waitFor((r) => r.method === 'PUT');
    await s.finish(success);
    expect(keepAlive.at! - t0).toBeGreaterThan(30_000);
    expect(keepAlive.at! - t0).toBeLessThanOrEqual(33_000);
    expect(keepAlive.json).toMatchObject({ state: 'running', checksum: 'crc32:00000000', output: { checksum: 'crc32:00000000', bytesize: 0 } });
    expect(patches()).toHaveLength(0);
  });

  it('keep-alive answered with Job-Status: canceled aborts', async () => {
    const aborts: TraceAbortReason[] = [];
    putReplies.push({ status: 200, headers: { 'Job-Status': 'canceled' } });
    const s = session(new MemoryTrace(), { onAbort: (r) => aborts.push(r) });
    s.start();
    await until(() => aborts.length > 0);
    await s.stop();
    expect(aborts).toEqual([{ cause: 'canceled', status: 200, jobStatus: 'canceled' }]);
  });
});

describe('final update', () => {
  it('flushes everything, then PUTs state, CRC-32/IEEE checksum and bytesize of the whole log', async () => {
    const trace = new MemoryTrace(Buffer.alloc(2 * MiB + 100, 'y'));
    trace.append('\u00e9t\u00e9\n');
    const s = session(trace);
    expect(await s.finish(success)).toEqual({ accepted: true, failedRounds: 0, lastStatus: 200 });
    expect(ranges()).toEqual([`0-${MiB - 1}`, `${MiB}-${2 * MiB - 1}`, `${2 * MiB}-${trace.size - 1}`]);
    const final = puts()[0]!;
    expect(final.json).toEqual({
      state: 'success',
      checksum: crc(trace.bytes),
      output: { checksum: crc(trace.bytes), bytesize: trace.size },
      info: expect.objectContaining({ name: 'fleetrunner' }),
      token: JOB.token,
    });
    expect(final.json).not.toHaveProperty('exit_code');
    expect(final.json).not.toHaveProperty('failure_reason');
    expect(stored.length).toBe(final.json.output.bytesize);
  });

  it('failed: mapped failure_reason and exit_code', async () => {
    const s = session(new MemoryTrace('boom\n'));
    await s.finish(failed('runner_configuration_error', 'bad', 3));
    expect(puts()[0]!.json).toMatchObject({ state: 'failed', failure_reason: 'script_failure', exit_code: 3 });
    await session(new MemoryTrace()).finish(failed('image_pull_failure'));
    expect(puts()[1]!.json).toMatchObject({ failure_reason: 'image_pull_failure' });
    expect(puts()[1]!.json).not.toHaveProperty('exit_code');
  });

  it('after 416 in the final flush waits one interval, then resumes at N', async () => {
    stored = Buffer.from('012');
    const s = session(new MemoryTrace('0123456789'));
    await s.finish(success);
    expect(ranges()).toEqual(['0-9', '3-9']);
    const [a, b] = patches().map((p) => p.at!);
    expect(b! - a!).toBe(3000);
  });

  it('202 → waits the interval from the header, then PUTs again; 200 ends it', async () => {
    finalReplies.push({ status: 202, headers: { 'X-GitLab-Trace-Update-Interval': '7' } }, { status: 202 }, { status: 200 });
    const s = session(new MemoryTrace('x'));
    expect(await s.finish(success)).toEqual({ accepted: true, failedRounds: 0, lastStatus: 200 });
    const at = puts().map((p) => p.at!);
    expect([at[1]! - at[0]!, at[2]! - at[1]!]).toEqual([7000, 7000]);
    expect(patches()).toHaveLength(1);
  });

  it('412 → re-PATCHes the whole trace from 0, then PUTs again', async () => {
    finalReplies.push({ status: 412 });
    const trace = new MemoryTrace('abcdef');
    const s = session(trace);
    const before = { size: 0 };
    gitlab.waitFor((r) => r.method === 'PUT').then(() => {
      before.size = stored.length;
      stored = Buffer.alloc(0); // GitLab lost the trace
    });
    expect(await s.finish(success)).toMatchObject({ accepted: true });
    expect(ranges()).toEqual(['0-5', '0-5']);
    expect(puts()).toHaveLength(2);
    expect(stored.toString()).toBe('abcdef');
  });

  it.each([
    [403, {}],
    [404, {}],
    [200, { 'Job-Status': 'failed' }],
  ])('%i %j → stops, no retries', async (status, headers) => {
    finalReplies.push({ status, headers });
    const r = await session(new MemoryTrace('x')).finish(failed('script_failure', undefined, 1));
    expect(puts()).toHaveLength(1);
    expect(r.accepted).toBe(status === 200);
  });

  it('5xx, 429 and no answer are retried for as long as it takes, with a backoff capped at finalUpdateBackoffMaxMs', async () => {
    for (let i = 0; i < 20; i++) finalReplies.push({ status: i % 3 === 0 ? 429 : 502 });
    finalReplies.push({ status: 200 });
    const s = session(new MemoryTrace('x'), { timing: { finalUpdateBackoffMaxMs: 10_000 } });
    expect(await s.finish(success)).toEqual({ accepted: true, failedRounds: 20, lastStatus: 200 });
    expect(puts()).toHaveLength(21);
    const at = puts().map((p) => p.at!);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // Each wait lies in the upper half of min·2^n capped at the maximum: it grows and never shrinks to min.
    expect(gaps.every((g, i) => g >= Math.min(10_000, 1000 * 2 ** i) / 2 && g <= Math.min(10_000, 1000 * 2 ** i) + 1)).toBe(true);
    expect(gaps.slice(-5).every((g) => g >= 5_000)).toBe(true);
  });

  it('an answer that is neither transient nor final (400) is retried too: only GitLab ends a job', async () => {
    for (let i = 0; i < 12; i++) finalReplies.push({ status: 400 });
    finalReplies.push({ status: 200 });
    const s = session(new MemoryTrace('y'), { timing: { finalUpdateBackoffMaxMs: 10_000 } });
    expect(await s.finish(success)).toEqual({ accepted: true, failedRounds: 12, lastStatus: 200 });
    expect(puts()).toHaveLength(13);
  });

  it('GitLab holding more trace than the local log (a spool lost before a restart) sends no more PATCHes and still PUTs', async () => {
    patchReplies.push(() => ({ status: 416, headers: { Range: '0-5000' } }));
    finalReplies.push({ status: 200 });
    const s = session(new MemoryTrace('short local log\n'));
    expect(await s.finish(success)).toEqual({ accepted: true, failedRounds: 0, lastStatus: 200 });
    expect(gitlab.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);
    expect(puts()).toHaveLength(1);
  });

  it('the interval resets to 3 s for the final update', async () => {
    patchReplies.push((r) => {
      stored = Buffer.concat([stored, r.body]);
      return { status: 202, headers: { Range: `0-${stored.length}`, 'X-GitLab-Trace-Update-Interval': '60' } };
    });
    const trace = new MemoryTrace('a');
    const s = session(trace);
    s.start();
    await until(() => s.updateIntervalMs === 60_000);
    finalReplies.length = 0;
    finalReplies.push({ status: 202 }, { status: 200 });
    await s.finish(success);
    const finals = puts().filter((p) => p.json.state === 'success'); // keep-alives went out while we waited
    const at = finals.map((p) => p.at!);
    expect(finals).toHaveLength(2);
    expect(at[1]! - at[0]!).toBe(3000);
  });
});

describe('credentials on /jobs calls', () => {
  it('only the job token authenticates them; the runner token never appears', async () => {
    const RUNNER_TOKEN = `glrt-${randomBytes(12).toString('hex')}`;
    gitlab.expect({
      name: 'job assigned',
      method: 'POST',
      path: '/jobs/request',
      reply: { status: 201, body: { ...JOB_WIRE, job_info: { name: 'j', project_id: 1 }, git_info: {}, runner_info: {}, variables: [] } },
    });
    const r = await api.requestJob({ token: RUNNER_TOKEN, systemId: 's_0123456789ab', info });
    expect(r.kind).toBe('job');
    const trace = new MemoryTrace('log line\n');
    const s = session(trace);
    expect(await s.acknowledge()).toBe('running');
    s.start();
    await gitlab.waitFor((q) => q.method === 'PATCH');
    trace.append('more\n');
    await s.finish(failed('script_failure', undefined, 2));
    const jobCalls = gitlab.requests.filter((q) => q.path.startsWith('/jobs/7'));
    expect(jobCalls.length).toBeGreaterThanOrEqual(3);
    for (const q of jobCalls) {
      expect(JSON.stringify(q.headers)).not.toContain(RUNNER_TOKEN);
      expect(q.body.toString()).not.toContain(RUNNER_TOKEN);
      expect(q.headers['runner-token']).toBeUndefined();
      expect(q.headers['job-token']).toBe(JOB.token);
      if (q.method === 'PUT') expect(q.json.token).toBe(JOB.token);
    }
  });
});

describe('a trace continued from a checkpoint (a successor coordinator)', () => {
  it('learns from the 416 how much GitLab has, skips the regenerated bytes up to there, and sends each byte once', async () => {
    const original = Buffer.from(Array.from({ length: 30 }, (_, i) => `line-${String(i).padStart(3, '0')}\n`).join(''));
    stored = Buffer.from(original.subarray(0, 100)); // what the previous coordinator got GitLab to store
    const trace = new MemoryTrace(original.subarray(0, 80)); // bytes from the checkpoint (60) on: regenerated so far
    const s = session(trace, { resumeFrom: 60 });
    s.start();
    await gitlab.waitFor((r) => r.method === 'PATCH');
    await until(() => s.sentBytes === 100);
    trace.append(original.subarray(80));
    expect(await s.finish(success)).toMatchObject({ accepted: true });
    expect(ranges()).toEqual(['60-79', `100-${original.length - 1}`]);
    expect(stored.equals(original)).toBe(true);
    expect(puts().at(-1)!.json).toMatchObject({ state: 'success', checksum: crc(original), output: { bytesize: original.length } });
  });
});
