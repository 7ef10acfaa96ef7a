// The strict fake GitLab over real HTTP: identity, job request, job updates, trace and cancellation.
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeGitLab } from '../../src/fakegitlab/index.js';
import type { FakeGitLabOptions, JobSpec } from '../../src/fakegitlab/index.js';

const FEATURES = {
  variables: true, artifacts: true, cache: true, shared: true, upload_multiple_artifacts: true,
  upload_raw_artifacts: true, refspecs: true, masking: true, raw_variables: true, artifacts_exclude: true,
  multi_build_steps: true, trace_reset: true, trace_checksum: true, trace_size: true, vault_secrets: true,
  cancelable: true, return_exit_code: true, cancel_gracefully: true, fallback_cache_keys: true, job_inputs: true,
};
const SYSTEM_ID = 's_0123456789ab';

let fake: FakeGitLab;

async function startFake(opts: FakeGitLabOptions = {}): Promise<void> {
  fake = new FakeGitLab(opts);
  await fake.start();
}

async function call(method: string, path: string, opts: { json?: unknown; headers?: Record<string, string>; body?: string | Buffer } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | Buffer | undefined = opts.body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const res = await fetch(`${fake.url}${path}`, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, any> };
}

/** A well-behaved runner, step by step. */
class Runner {
  lastUpdate?: string;
  constructor(public token: string, public features: Record<string, boolean> = FEATURES) {}

  async request() {
    const body: Record<string, unknown> = { token: this.token, system_id: SYSTEM_ID, info: { name: 'gitlab-runner', features: this.features } };
    if (this.lastUpdate !== undefined) body.last_update = this.lastUpdate;
    const res = await call('POST', '/api/v4/jobs/request', { json: body });
    const lu = res.headers.get('x-gitlab-last-update');
    if (lu) this.lastUpdate = lu;
    return res;
  }

  async take() {
    const res = await this.request();
    expect(res.status).toBe(201);
    const job = res.json as { id: number; token: string } & Record<string, any>;
    expect((await put(job, { state: 'running' })).status).toBe(200);
    return job;
  }
}

function put(job: { id: number; token: string }, body: Record<string, unknown>, token = job.token) {
  return call('PUT', `/api/v4/jobs/${job.id}`, { json: { token, ...body }, headers: { 'JOB-TOKEN': token } });
}

function patch(job: { id: number; token: string }, start: number, data: string, range?: string) {
  const len = Buffer.byteLength(data);
  return call('PATCH', `/api/v4/jobs/${job.id}/trace`, {
    body: data,
    headers: { 'JOB-TOKEN': job.token, 'Content-Type': 'text/plain', 'Content-Range': range ?? `${start}-${start + len - 1}` },
  });
}

function output(text: string) {
  return { checksum: `crc32:${crc32(Buffer.from(text)).toString(16).padStart(8, '0')}`, bytesize: Buffer.byteLength(text) };
}

async function pipelineWith(jobs: JobSpec[]) {
  const project = await fake.createProject({ path: 'group/app', files: { 'README.md': 'hello\n' } });
  return fake.createPipeline(project, jobs);
}

beforeEach(async () => startFake());
afterEach(async () => fake.stop());

describe('identity', () => {
  it('verifies a glrt- token and refuses an unknown one', async () => {
    const r = fake.addRunner({ tokenExpiresAt: '2100-01-01T00:00:00Z' });
    const ok = await call('POST', '/api/v4/runners/verify', { json: { token: r.token, system_id: SYSTEM_ID, info: { features: FEATURES } } });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ id: r.id, token: r.token, token_expires_at: '2100-01-01T00:00:00.000Z' });
    expect(fake.runner(r.id).managers[0]?.features.cancel_gracefully).toBe(true);
    expect((await call('POST', '/api/v4/runners/verify', { json: { token: 'glrt-nope' } })).status).toBe(403);
    expect(fake.violations).toEqual([]);
  });

  it('records a glrt- token verified without system_id', async () => {
    const r = fake.addRunner();
    await call('POST', '/api/v4/runners/verify', { json: { token: r.token } });
    expect(fake.violations.join()).toMatch(/check 30.*without system_id/);
  });

  it('registers with the legacy registration token and unregisters', async () => {
    const reg = await call('POST', '/api/v4/runners', { json: { token: fake.registrationToken, description: 'x', tag_list: 'a,b' } });
    expect(reg.status).toBe(201);
    expect(reg.json.token).not.toMatch(/^glrt-/);
    expect(reg.json.token_expires_at).toBeNull();
    expect((await call('POST', '/api/v4/runners', { json: { token: 'wrong' } })).status).toBe(403);
    expect((await call('DELETE', '/api/v4/runners', { json: { token: reg.json.token } })).status).toBe(204);
    expect((await call('POST', '/api/v4/runners/verify', { json: { token: reg.json.token } })).status).toBe(403);
    expect(fake.violations).toEqual([]);
  });

  it('flags a glrt- token sent to legacy registration', async () => {
    const r = fake.addRunner();
    expect((await call('POST', '/api/v4/runners', { json: { token: r.token } })).status).toBe(403);
    expect(fake.violations.join()).toMatch(/check 30.*legacy registration/);
  });

  it('removes only a runner manager with DELETE /runners/managers', async () => {
    const r = fake.addRunner();
    await call('POST', '/api/v4/runners/verify', { json: { token: r.token, system_id: SYSTEM_ID } });
    expect((await call('DELETE', '/api/v4/runners/managers', { json: { token: r.token } })).status).toBe(400);
    expect((await call('DELETE', '/api/v4/runners/managers', { json: { token: 'glrt-x', system_id: SYSTEM_ID } })).status).toBe(403);
    expect((await call('DELETE', '/api/v4/runners/managers', { json: { token: r.token, system_id: SYSTEM_ID } })).status).toBe(204);
    expect((await call('DELETE', '/api/v4/runners/managers', { json: { token: r.token, system_id: SYSTEM_ID } })).status).toBe(404);
    expect((await call('POST', '/api/v4/runners/verify', { json: { token: r.token, system_id: SYSTEM_ID } })).status).toBe(200);
    fake.takeViolations(); // the 400 above is a deliberate malformed call
  });

  it('rotates a token; the old one stops working and its use is flagged', async () => {
    let now = 1_000_000;
    await fake.stop();
    await startFake({ clock: { now: () => now } });
    const r = fake.addRunner({ tokenExpiresAt: now + 100_000 });
    now += 80_000;
    const reset = await call('POST', '/api/v4/runners/reset_authentication_token', { json: { token: r.token } });
    expect(reset.status).toBe(201);
    expect(reset.json.token).toMatch(/^glrt-/);
    expect(reset.json.token_expires_at).toBe(new Date(now + 100_000).toISOString());
    expect(fake.violations).toEqual([]);
    expect((await call('POST', '/api/v4/runners/verify', { json: { token: r.token, system_id: SYSTEM_ID } })).status).toBe(403);
    expect(fake.violations.join()).toMatch(/check 30.*old token/);
  });

  it('flags a reset long before 75 % of the lifetime, and 403s an expired token', async () => {
    let now = 1_000_000;
    await fake.stop();
    await startFake({ clock: { now: () => now } });
    const r = fake.addRunner({ tokenExpiresAt: now + 100_000 });
    const r2 = fake.addRunner({ tokenExpiresAt: now + 100_000 });
    now += 10_000;
    await call('POST', '/api/v4/runners/reset_authentication_token', { json: { token: r.token } });
    expect(fake.violations.join()).toMatch(/check 30.*10% of its lifetime/);
    now += 100_000;
    expect((await call('POST', '/api/v4/runners/verify', { json: { token: r2.token, system_id: SYSTEM_ID } })).status).toBe(403);
  });

  it('answers router discovery with 501', async () => {
    expect((await call('GET', '/api/v4/runners/router/discovery')).status).toBe(501);
  });
});

describe('POST /jobs/request', () => {
  it('answers 204 with X-GitLab-Last-Update, then a GitLab-shaped 201', async () => {
    const runner = new Runner(fake.addRunner().token);
    const none = await runner.request();
    expect(none.status).toBe(204);
    expect(none.headers.get('x-gitlab-last-update')).toMatch(/^[0-9a-f]{32}$/);
    expect((await runner.request()).status).toBe(204); // queue value unchanged: Rails' short cut
    const p = await pipelineWith([
      { name: 'build', stage: 'build', script: ['make'], before_script: ['echo hi'], after_script: ['echo bye'],
        variables: { FOO: 'bar', REF: '${FOO}-x', SECRET: { value: 'supersecret1', masked: true } },
        artifacts: { paths: ['out/'], reports: { junit: ['report.xml'] } } },
      { name: 'test', stage: 'test', script: ['make test'] },
    ]);
    const res = await runner.request();
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/json');
    const job = res.json;
    expect(job.id).toBe(p.jobIds[0]);
    expect(job.token).toMatch(/^glcbt-/);
    expect(job.git_info.refspecs).toEqual([`+refs/pipelines/${p.id}:refs/pipelines/${p.id}`, '+refs/heads/main:refs/remotes/origin/main']);
    expect(job.git_info.depth).toBe(20);
    expect(job.git_info.repo_url).toBe(`http://gitlab-ci-token:${job.token}@${new URL(fake.url).host}/group/app.git`);
    expect(job.runner_info.timeout).toBe(3600);
    expect(job.steps).toEqual([
      { name: 'script', script: ['echo hi', 'make'], timeout: 3600, when: 'on_success', allow_failure: false },
      { name: 'after_script', script: ['echo bye'], timeout: 3600, when: 'always', allow_failure: true },
    ]);
    const vars = new Map((job.variables as Array<{ key: string; value: string; masked: boolean }>).map((v) => [v.key, v]));
    expect(vars.get('CI_JOB_TOKEN')).toMatchObject({ value: job.token, masked: true, public: false });
    expect(vars.get('CI_REGISTRY_PASSWORD')).toMatchObject({ value: job.token, masked: true });
    expect(vars.get('CI_PROJECT_PATH')?.value).toBe('group/app');
    expect(vars.get('CI_COMMIT_SHA')?.value).toBe(job.git_info.sha);
    expect(vars.get('REF')?.value).toBe('bar-x');
    expect(vars.get('SECRET')).toMatchObject({ masked: true, public: false });
    expect(vars.has('CI_SERVER')).toBe(false); // a runner variable, not GitLab's
    // Rails: the archive entry carries `artifacts:` keys as written (null when not), no `untracked` key when
    // unwritten; report entries are compacted but keep `expire_in: null`.
    expect(job.artifacts).toEqual([
      { name: null, paths: ['out/'], when: null, expire_in: null, artifact_type: 'archive', artifact_format: 'zip' },
      { name: 'junit.xml.gz', paths: ['report.xml'], when: 'always', expire_in: null, artifact_type: 'junit', artifact_format: 'gzip' },
    ]);
    expect(job.features.failure_reasons).toContain('runner_unsupported');
    expect(job.features.trace_sections).toBe(true);
    expect(fake.job(job.id).state).toBe('running');
    expect(fake.violations).toEqual([]);
  });

  it('flags a missing or wrong last_update and missing features', async () => {
    const runner = new Runner(fake.addRunner().token, { cancelable: true });
    await runner.request();
    expect(fake.violations.join()).toMatch(/check 1.*cancel_gracefully, trace_checksum, trace_size, trace_reset/);
    runner.lastUpdate = 'bogus';
    await runner.request();
    expect(fake.violations.join()).toMatch(/check 2.*"bogus" is not/);
  });

  describe('check 2: a request in flight may carry the value before the latest', () => {
    let t = 0;
    const ask = (token: string, lastUpdate?: string) =>
      call('POST', '/api/v4/jobs/request', {
        json: { token, system_id: SYSTEM_ID, info: { name: 'gitlab-runner', features: FEATURES }, ...(lastUpdate !== undefined && { last_update: lastUpdate }) },
      });
    beforeEach(async () => {
      await fake.stop();
      t = Date.UTC(2026, 0, 1);
      await startFake({ clock: { now: () => t } });
    });

    it('one request at a time is held to the latest value, however late it comes', async () => {
      const token = fake.addRunner().token;
      expect((await ask(token)).headers.get('x-gitlab-last-update')).toMatch(/^[0-9a-f]{8,}$/);
      t += 5000;
      await ask(token); // ignored the header
      expect(fake.takeViolations().join()).toMatch(/check 2.*last_update missing/);
    });

    it('several requests at once: an older value is fine until a request shows the runner has the newer one', async () => {
      const token = fake.addRunner().token;
      const v1 = (await ask(token)).headers.get('x-gitlab-last-update')!;
      await pipelineWith([{ name: 'a', script: ['true'] }]); // the queue moves on
      expect((await ask(token, v1)).status).toBe(201);
      const v2 = (await ask(token, v1)).headers.get('x-gitlab-last-update')!;
      expect(v2).not.toBe(v1);
      await ask(token, v1); // sent before the answer carrying v2 was read
      t += 5000; // a loaded machine: requests wait seconds in either process
      await ask(token, v1);
      expect(fake.takeViolations()).toEqual([]);
      await ask(token, v2); // the runner has v2 now
      t += 1500;
      await ask(token, v1);
      expect(fake.takeViolations().join()).toMatch(new RegExp(`check 2.*"${v1}" is not "${v2}"`));
    });
  });

  it('holds a long poll until a job is enqueued', async () => {
    await fake.stop();
    await startFake({ longPollMs: 5000 });
    const runner = new Runner(fake.addRunner().token);
    await runner.request();
    const started = Date.now();
    const held = runner.request();
    await new Promise((r) => setTimeout(r, 200));
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const res = await held;
    expect(res.status).toBe(204);
    expect(res.headers.get('gitlab-ci-builds-polling')).toBe('yes');
    expect(res.headers.get('x-gitlab-last-update')).toBeNull();
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await runner.request()).status).toBe(201);
    expect(fake.violations).toEqual([]);
  });

  it('drops a job needing an unadvertised feature as runner_unsupported', async () => {
    const runner = new Runner(fake.addRunner().token, { ...FEATURES, artifacts_exclude: false });
    const p = await pipelineWith([
      { name: 'a', script: ['true'], artifacts: { paths: ['x'], exclude: ['x/y'] } },
      { name: 'b', script: ['true'] },
    ]);
    const res = await runner.request();
    expect(res.json.id).toBe(p.jobIds[1]);
    expect(fake.job(p.jobIds[0]!)).toMatchObject({ state: 'failed', failureReason: 'runner_unsupported' });
    expect(fake.violations.join()).toMatch(/check 3.*artifacts_exclude/);
  });

  it('hands out later stages only after earlier ones succeed', async () => {
    const runner = new Runner(fake.addRunner().token);
    const p = await pipelineWith([
      { name: 'build', stage: 'build', script: ['true'] },
      { name: 'test', stage: 'test', script: ['true'] },
      { name: 'deploy', stage: 'deploy', script: ['true'] },
    ]);
    const build = await runner.take();
    expect((await runner.request()).status).toBe(204);
    expect(fake.job(p.jobIds[1]!).state).toBe('created');
    expect((await put(build, { state: 'success', output: output('') })).status).toBe(200);
    const test = await runner.take();
    expect(test.id).toBe(p.jobIds[1]);
    expect(test.dependencies).toEqual([{ id: build.id, name: 'build', token: test.token }]);
    await put(test, { state: 'failed', failure_reason: 'script_failure', exit_code: 1, output: output('') });
    const view = await fake.waitForPipeline(p, 1000);
    expect(view.status).toBe('failed');
    expect(view.jobs.map((j) => j.state)).toEqual(['success', 'failed', 'skipped']);
    expect(fake.job(test.id).exitCode).toBe(1);
    expect(fake.violations).toEqual([]);
  });

  it('flags polling again within 60 min of three 403s', async () => {
    const runner = new Runner('glrt-unknown');
    for (let i = 0; i < 3; i++) expect((await runner.request()).status).toBe(403);
    expect(fake.violations).toEqual([]);
    await runner.request();
    expect(fake.violations.join()).toMatch(/check 6/);
  });

  it('injects 503 and 429 with Retry-After', async () => {
    const runner = new Runner(fake.addRunner().token);
    fake.injectFaults({ jobRequest: [503, { status: 429, retryAfterS: 7 }] });
    expect((await runner.request()).status).toBe(503);
    const limited = await runner.request();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect((await runner.request()).status).toBe(204);
  });

  it('keeps a two-phase job pending until PUT running', async () => {
    await fake.stop();
    await startFake({ twoPhaseCommit: true });
    const runner = new Runner(fake.addRunner().token, { ...FEATURES, two_phase_job_commit: true });
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const job = (await runner.request()).json as { id: number; token: string };
    expect(fake.job(job.id).state).toBe('pending');
    expect((await runner.request()).status).toBe(204);
    expect((await put(job, { state: 'running' })).status).toBe(200);
    expect(fake.job(job.id).state).toBe('running');
    expect(fake.violations).toEqual([]);
  });
});

describe('PUT and PATCH', () => {
  it('accepts a conforming job lifecycle', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const job = await runner.take();
    const first = await patch(job, 0, 'hello ');
    expect(first.status).toBe(202);
    expect(first.headers.get('range')).toBe('0-6');
    expect(first.headers.get('job-status')).toBe('running');
    expect(first.headers.get('x-gitlab-trace-update-interval')).toBe('3');
    expect((await patch(job, 6, 'world\n')).headers.get('range')).toBe('0-12');
    expect((await put(job, { state: 'running', output: output('hello world\n') })).status).toBe(200);
    const done = await put(job, { state: 'success', output: output('hello world\n'), checksum: output('hello world\n').checksum });
    expect(done.status).toBe(200);
    expect(done.headers.get('job-status')).toBe('success');
    expect(fake.job(job.id)).toMatchObject({ state: 'success', traceText: 'hello world\n' });
    expect(fake.violations).toEqual([]);
    expect(fake.maxConcurrentRunning).toBe(1);
    const logged = fake.requests.find((r) => r.method === 'PATCH')!;
    expect(logged).toMatchObject({ status: 202, headers: { 'job-token': '[REDACTED]', 'content-range': '0-5' } });
    expect(logged.responseHeaders).toMatchObject({ 'job-status': 'running', range: '0-6' });
    expect(JSON.stringify(fake.requests)).not.toContain(job.token);
    expect((await patch(job, 12, 'late')).status).toBe(403);
    expect(fake.violations.join()).toMatch(/check 18.*after its final PUT was answered 200/);
  });

  it('enforces Content-Range, contiguity and 416', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const job = await runner.take();
    const noRange = await call('PATCH', `/api/v4/jobs/${job.id}/trace`, { body: 'x', headers: { 'JOB-TOKEN': job.token, 'Content-Type': 'text/plain' } });
    expect(noRange.status).toBe(400);
    expect(fake.takeViolations().join()).toMatch(/check 9/);
    const gap = await patch(job, 5, 'abc');
    expect(gap.status).toBe(416);
    expect(gap.headers.get('range')).toBe('0-0');
    expect(fake.takeViolations().join()).toMatch(/check 11.*starts at 5, expected 0/);
    expect((await patch(job, 0, 'abc', 'bytes 0-2/3')).status).toBe(202);
    expect(fake.takeViolations().join()).toMatch(/check 9.*bare/);
    expect((await patch(job, 3, '')).status).toBe(202);
    expect(fake.takeViolations().join()).toMatch(/check 10.*empty/);
  });

  it('injects a 416 at an offset; resending from Range is fine', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const job = await runner.take();
    fake.injectFaults({ trace416AtOffset: [4] });
    await patch(job, 0, 'abcd');
    const r = await patch(job, 4, 'efgh');
    expect(r.status).toBe(416);
    expect(r.headers.get('range')).toBe('0-4');
    expect((await patch(job, 4, 'efgh')).status).toBe(202);
    fake.injectFaults({ tracePatch: [500] });
    expect((await patch(job, 8, 'ij')).status).toBe(500);
    expect((await patch(job, 8, 'ij')).status).toBe(202);
    expect(fake.violations).toEqual([]);
  });

  it('checks the final PUT: bytesize, checksum, failure_reason and exit_code', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'] }, { name: 'b', script: ['true'] }, { name: 'c', script: ['true'] }]);
    const a = await runner.take();
    await patch(a, 0, 'abc');
    await put(a, { state: 'success', output: { checksum: 'crc32:00000000', bytesize: 5 }, failure_reason: 'script_failure' });
    const v = fake.takeViolations().join('\n');
    expect(v).toMatch(/check 15.*bytesize=5 but 3/);
    expect(v).toMatch(/check 16.*crc32:00000000/);
    expect(v).toMatch(/check 17.*success must not carry failure_reason/);
    const b = await runner.take();
    await put(b, { state: 'failed', exit_code: 0, output: output('') });
    expect(fake.takeViolations().join('\n')).toMatch(/without failure_reason[\s\S]*exit_code 0/);
    expect(fake.job(b.id).failureReason).toBe('unknown_failure');
    const c = await runner.take();
    await put(c, { state: 'failed', failure_reason: 'job_canceled', output: output('') });
    expect(fake.takeViolations().join()).toMatch(/check 17.*job_canceled/);
  });

  it('answers 202 to the final PUT N times and checks the wait', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const job = await runner.take();
    fake.injectFaults({ finalPut202: 2, traceUpdateIntervalS: 1 });
    const first = await put(job, { state: 'success', output: output('') });
    expect(first.status).toBe(202);
    expect(first.headers.get('x-gitlab-trace-update-interval')).toBe('1');
    expect((await put(job, { state: 'success', output: output('') })).status).toBe(202);
    expect(fake.takeViolations().join()).toMatch(/check 18.*repeated/);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await put(job, { state: 'success', output: output('') })).status).toBe(200);
    expect(fake.violations).toEqual([]);
  });

  it('requires the acknowledgement first and never the runner token', async () => {
    const r = fake.addRunner();
    const runner = new Runner(r.token);
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const job = (await runner.request()).json as { id: number; token: string };
    await patch(job, 0, 'x');
    expect(fake.takeViolations().join()).toMatch(/check 7.*first call must be PUT state=running/);
    const wrong = await put(job, { state: 'running' }, r.token);
    expect(wrong.status).toBe(403);
    expect(fake.takeViolations().join()).toMatch(/check 8.*runner token/);
  });

  it('finds secrets split across PATCHes and masks the job token like Rails', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'], variables: { PASS: { value: 'hunter2hunter2', masked: true } } }]);
    const job = await runner.take();
    await patch(job, 0, 'pw=hunter2');
    await patch(job, 10, 'hunter2 ');
    const v = fake.takeViolations().join();
    expect(v).toMatch(/check 24.*masked variable PASS/);
    await patch(job, 18, `t=${job.token}\n`);
    expect(fake.takeViolations().join()).toMatch(/check 24.*the job token/);
    expect(fake.job(job.id).traceText).toContain(`t=${'x'.repeat(job.token.length)}\n`);
  });

  it('finds a secret or a glpat- token wherever it lies in a large PATCH, and nothing in a clean one', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'], variables: { PASS: { value: 'hunter2hunter2', masked: true } } }]);
    const job = await runner.take();
    const filler = (n: number) => 'log line ... ok\n'.repeat(Math.ceil(n / 16)).slice(0, n);
    // The scan reads a PATCH 64 KiB at a time: a clean 300 KiB piece with masked values in it, then the
    // secret across the first window's end, then a token across the fourth's.
    const clean = `${filler(100_000)}pw=[MASKED] glpat-[MASKED]\n${filler(200_000)}`;
    await patch(job, 0, clean);
    expect(fake.takeViolations()).toEqual([]);
    let at = Buffer.byteLength(clean);
    const secret = `${filler(64 * 1024 - 5)}hunter2hunter2${filler(10_000)}`;
    await patch(job, at, secret);
    expect(fake.takeViolations().join()).toMatch(/check 24.*masked variable PASS/);
    at += Buffer.byteLength(secret);
    const token = `${filler(4 * 64 * 1024 - 9)}glpat-${'Ab1'.repeat(7)}${filler(1000)}`;
    await patch(job, at, token);
    expect(fake.takeViolations().join()).toMatch(/check 24.*glpat- personal access token/);
  });
});

describe('more faults and timing', () => {
  it('answers 412 to a final PUT; the whole trace is then re-sent from 0', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const job = await runner.take();
    await patch(job, 0, 'abc');
    fake.injectFaults({ finalPut: [412], forJob: job.id });
    expect((await put(job, { state: 'success', output: output('abc') })).status).toBe(412);
    expect((await patch(job, 0, 'abc')).status).toBe(202);
    expect((await put(job, { state: 'success', output: output('abc') })).status).toBe(200);
    expect(fake.violations).toEqual([]);
  });

  it('flags a runner that accepts a 201 served as text/plain', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    fake.injectFaults({ jobRequest: [{ status: 201, contentType: 'text/plain' }] });
    const res = await runner.request();
    expect(res.headers.get('content-type')).toBe('text/plain');
    await put(res.json as { id: number; token: string }, { state: 'running' });
    expect(fake.violations.join()).toMatch(/check 4/);
  });

  it('flags a silent running job without keep-alive (injected clock)', async () => {
    let now = 5_000_000;
    await fake.stop();
    await startFake({ clock: { now: () => now } });
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['sleep 60'] }]);
    const job = await runner.take();
    now += 30_000;
    await put(job, { state: 'running', output: output('') });
    expect(fake.violations).toEqual([]);
    now += 40_000;
    await put(job, { state: 'running', output: output('') });
    expect(fake.violations.join()).toMatch(/check 14.*40 s without/);
  });

  it('fails a job server-side; the runner sees Job-Status failed and 403', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['true'] }]);
    const job = await runner.take();
    fake.dropJob(job.id);
    const res = await patch(job, 0, 'x');
    expect(res.status).toBe(403);
    expect(res.headers.get('job-status')).toBe('failed');
    expect(fake.job(job.id).failureReason).toBe('api_failure');
  });
});

describe('cancellation', () => {
  it('goes through canceling when the runner can cancel gracefully', async () => {
    const runner = new Runner(fake.addRunner().token);
    await pipelineWith([{ name: 'a', script: ['sleep 100'] }]);
    const job = await runner.take();
    fake.cancelJob(job.id);
    expect(fake.job(job.id).state).toBe('canceling');
    const p = await patch(job, 0, 'after_script\n');
    expect(p.status).toBe(202);
    expect(p.headers.get('job-status')).toBe('canceling');
    expect((await put(job, { state: 'failed', failure_reason: 'unknown_failure', output: output('after_script\n') })).status).toBe(200);
    expect(fake.job(job.id).state).toBe('canceled');
    expect(fake.violations).toEqual([]);
  });

  it('cancels at once otherwise; more than one PATCH after the 403 is flagged', async () => {
    const runner = new Runner(fake.addRunner().token, { ...FEATURES, cancel_gracefully: false });
    await pipelineWith([{ name: 'a', script: ['sleep 100'] }]);
    const job = await runner.take();
    fake.cancelJob(job.id);
    fake.takeViolations(); // check 1 complains about cancel_gracefully: deliberate here
    const p = await patch(job, 0, 'x');
    expect(p.status).toBe(403);
    expect(p.headers.get('job-status')).toBe('canceled');
    expect((await patch(job, 0, 'x')).status).toBe(403);
    expect((await put(job, { state: 'failed', failure_reason: 'unknown_failure', output: output('') })).status).toBe(403);
    expect(fake.violations).toEqual([]);
    await patch(job, 0, 'x');
    expect(fake.violations.join()).toMatch(/check 20.*more than one PATCH/);
  });
});

describe('robustness', () => {
  it('answers malformed requests with 400 or 403 and keeps serving', async () => {
    const bad = await call('POST', '/api/v4/jobs/request', { body: '{not json', headers: { 'Content-Type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect((await call('POST', '/api/v4/jobs/request', { json: [] })).status).toBe(400);
    expect((await call('POST', '/api/v4/jobs/request', { json: {} })).status).toBe(400);
    expect((await call('PUT', '/api/v4/jobs/999', { json: { token: 'x', state: 'running' } })).status).toBe(403);
    expect((await call('PUT', '/api/v4/jobs/abc', { json: {} })).status).toBe(404);
    expect((await call('GET', '/api/v4/nothing')).status).toBe(404);
    expect((await call('POST', '/api/v4/runners/verify', { body: 'token=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })).status).toBe(400);
    expect(fake.violations.some((v) => v.includes('internal'))).toBe(false);
    expect(fake.violations.length).toBeGreaterThan(0);
    expect((await call('GET', '/api/v4/runners/router/discovery')).status).toBe(501);
    const logged = fake.requests.find((r) => r.path === '/api/v4/jobs/999');
    expect(logged?.status).toBe(403);
  });
});
