// Our GitLab client against our strict fake GitLab: two independent readings of docs/gitlab-protocol.md meet here.
// Every flow must leave the fake's violation list empty.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import { failed, success } from '../../../src/core/outcome.js';
import { FakeGitLab } from '../../../src/fakegitlab/index.js';
import {
  buildFeatures,
  buildRunnerInfo,
  createRunnerApi,
  JobTraceSession,
  LastUpdateStore,
  RunnerHealth,
  RunnerIdentity,
  type RunnerApi,
} from '../../../src/gitlab/index.js';
import { advertisedFeatures } from '../../../src/cli/run.js';
import { FileTraceLog } from '../../../src/runner/trace/file-trace-log.js';

const info = buildRunnerInfo({ version: '0.1.0', platform: 'linux', arch: 'x64', executor: 'shell', shell: 'bash', features: buildFeatures(advertisedFeatures()) });
const fast = { initialIntervalMs: 50, forceSendIntervalMs: 30_000, finalUpdateBackoffMinMs: 20, finalUpdateBackoffMaxMs: 100 };

let fake: FakeGitLab;
let api: RunnerApi;
let dir: string;
beforeEach(async () => {
  fake = new FakeGitLab({ traceUpdateIntervalS: 1 });
  await fake.start();
  api = createRunnerApi({ url: fake.url, userAgent: 'fleetrunner-test', clock: systemClock, lastUpdates: new LastUpdateStore() });
  dir = mkdtempSync(join(tmpdir(), 'fr-cvf-'));
});
afterEach(async () => {
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function oneJob(script = ['echo hi'], name = 'j') {
  const project = await fake.createProject({ path: `g/p${Math.floor(Math.random() * 1e9)}`, files: { 'a.txt': 'a' } });
  return fake.createPipeline(project, [{ name, script }]);
}

async function takeJob(token: string) {
  for (let i = 0; i < 20; i++) {
    const r = await api.requestJob({ token, systemId: 's_000000000000', info });
    if (r.kind === 'job') return r.job;
  }
  throw new Error('no job handed out');
}

function logWith(text: string, name = 'trace'): FileTraceLog {
  const log = new FileTraceLog(join(dir, name), 4 << 20);
  log.append(Buffer.from(text));
  return log;
}

describe('client against the strict fake GitLab', () => {
  it('verifies a glrt- token, requests with last_update, and gets 204 then 201', async () => {
    const runner = fake.addRunner();
    const identity = new RunnerIdentity({ api, clock: systemClock, configuredToken: runner.token, systemId: 's_000000000000', info });
    await identity.start();
    const first = await api.requestJob({ token: identity.token, systemId: 's_000000000000', info });
    expect(first.kind).toBe('none');
    await oneJob();
    const job = await takeJob(identity.token);
    expect(job.token).toMatch(/^glcbt-/);
    expect(fake.violations).toEqual([]);
  });

  it('runs the acknowledge → patches → final PUT flow with checksum and bytesize', async () => {
    const runner = fake.addRunner();
    const p = await oneJob();
    const job = await takeJob(runner.token);
    const log = logWith('line one\n');
    const s = new JobTraceSession({ api, job, trace: log, clock: systemClock, info, timing: fast });
    expect(await s.acknowledge()).toBe('running');
    s.start();
    log.append(Buffer.from('line two\n'));
    expect((await s.finish(success)).accepted).toBe(true);
    const view = fake.job(p.jobIds[0]!);
    expect(view.state).toBe('success');
    expect(view.traceText).toBe('line one\nline two\n');
    expect(fake.violations).toEqual([]);
  });

  it('resends from the offset GitLab names after a 416', async () => {
    const runner = fake.addRunner();
    const p = await oneJob();
    const job = await takeJob(runner.token);
    fake.injectFaults({ trace416AtOffset: [0], forJob: job.id });
    const log = logWith('x'.repeat(5000));
    const s = new JobTraceSession({ api, job, trace: log, clock: systemClock, info, timing: fast });
    await s.acknowledge();
    s.start();
    expect((await s.finish(failed('script_failure', 'exit 1', 1))).accepted).toBe(true);
    const view = fake.job(p.jobIds[0]!);
    expect(view).toMatchObject({ state: 'failed', failureReason: 'script_failure', exitCode: 1 });
    expect(view.trace.length).toBe(5000);
    expect(fake.violations).toEqual([]);
  });

  it('repeats the final PUT after 202 and re-sends the whole trace after 412', async () => {
    const runner = fake.addRunner();
    const p = await oneJob();
    const job = await takeJob(runner.token);
    fake.injectFaults({ finalPut: [412], finalPut202: 1, forJob: job.id });
    const log = logWith('abc\n'.repeat(300));
    const s = new JobTraceSession({ api, job, trace: log, clock: systemClock, info, timing: fast });
    await s.acknowledge();
    s.start();
    expect((await s.finish(success)).accepted).toBe(true);
    const view = fake.job(p.jobIds[0]!);
    expect(view.state).toBe('success');
    expect(view.trace.length).toBe(1200);
    expect(fake.violations).toEqual([]);
  }, 30_000);

  it('hears a graceful cancel and ends the job canceled', async () => {
    const runner = fake.addRunner();
    const p = await oneJob();
    const job = await takeJob(runner.token);
    let canceled = false;
    const log = logWith('working\n');
    const s = new JobTraceSession({ api, job, trace: log, clock: systemClock, info, timing: fast, onCancel: () => (canceled = true) });
    await s.acknowledge();
    s.start();
    fake.cancelJob(job.id);
    for (let i = 0; i < 100 && !canceled; i++) {
      log.append(Buffer.from('.'));
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(canceled).toBe(true);
    await s.finish(failed('job_canceled'));
    expect(fake.job(p.jobIds[0]!).state).toBe('canceled');
    expect(fake.violations).toEqual([]);
  });

  it('stops after 3 consecutive 403s on jobs/request', async () => {
    const health = new RunnerHealth({ clock: systemClock });
    for (let i = 0; i < 3; i++) health.record(await api.requestJob({ token: `glrt-${randomBytes(12).toString('hex')}`, systemId: 's_000000000000', info }));
    expect(health.shouldRequest()).toBe(false);
    expect(fake.violations).toEqual([]);
  });

  it('registers with a legacy registration token and unregisters on stop', async () => {
    const identity = new RunnerIdentity({
      api, clock: systemClock, configuredToken: fake.registrationToken, systemId: 's_000000000000', info,
      registration: { description: 'fr-test', tags: ['a'], info },
    });
    await identity.start();
    expect(identity.token).not.toBe(fake.registrationToken);
    await identity.stop();
    const paths = fake.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).toContain('POST /api/v4/runners');
    expect(paths).toContain('DELETE /api/v4/runners');
    expect(fake.violations).toEqual([]);
  });

  it('rotates a token at 75 % of its lifetime and uses only the new one', async () => {
    const runner = fake.addRunner({ tokenExpiresAt: Date.now() + 4000 });
    const identity = new RunnerIdentity({ api, clock: systemClock, configuredToken: runner.token, systemId: 's_000000000000', info });
    await identity.start();
    expect(await identity.rotateIfDue()).toBe(false);
    await new Promise((r) => setTimeout(r, 3100));
    expect(await identity.rotateIfDue()).toBe(true);
    expect(identity.token).not.toBe(runner.token);
    expect((await api.requestJob({ token: identity.token, systemId: 's_000000000000', info })).kind).toBe('none');
    expect(fake.violations).toEqual([]);
  });
});
