import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { GitLabApiError } from '../../../src/gitlab/errors.js';
import { buildFeatures } from '../../../src/gitlab/features.js';
import { buildRunnerInfo } from '../../../src/gitlab/info.js';
import { FetchRequester } from '../../../src/gitlab/requester.js';
import { RetryRequester } from '../../../src/gitlab/retry-requester.js';
import { RunnerApi } from '../../../src/gitlab/runner-api.js';
import { ScriptedGitLab, type Reply } from './helpers/scripted-gitlab.js';
import { VirtualClock } from './helpers/virtual-clock.js';

const RUNNER_TOKEN = `glrt-${randomBytes(12).toString('hex')}`;
const SYSTEM_ID = 's_0123456789ab';
const UA = 'fleetrunner 0.1.0 (main; node v20.15.0; linux/amd64)';
const info = buildRunnerInfo({ version: '0.1.0', platform: 'linux', arch: 'x64', executor: 'docker', features: buildFeatures(['image']) });
const JOB = { id: 42, token: `glcbt-${randomBytes(12).toString('hex')}`, job_info: { name: 'build', project_id: 1 }, git_info: {}, runner_info: {}, variables: [] };

let gitlab: ScriptedGitLab;
let clock: VirtualClock;
let api: RunnerApi;

beforeEach(async () => {
  clock = new VirtualClock();
  gitlab = await new ScriptedGitLab(() => clock.now()).start();
  api = new RunnerApi({ url: `${gitlab.url}/`, requester: new RetryRequester(new FetchRequester(), { clock }), userAgent: UA });
});
afterEach(async () => {
  expect(gitlab.unexpected).toEqual([]);
  await gitlab.close();
});

const jobsRequest = (name: string, reply: Reply) => ({ name, method: 'POST', path: '/jobs/request', reply });

describe('every request', () => {
  it('carries User-Agent, a 32-hex X-Request-Id, JSON Content-Type/Accept and the runner token in body and RUNNER-TOKEN', async () => {
    gitlab.expect(jobsRequest('no job', { status: 204 }));
    await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    const r = gitlab.requests[0]!;
    expect(r.headers['user-agent']).toBe(UA);
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['accept']).toBe('application/json');
    expect(r.headers['runner-token']).toBe(RUNNER_TOKEN);
    expect(r.json).toMatchObject({ token: RUNNER_TOKEN, system_id: SYSTEM_ID, info: { name: 'fleetrunner', architecture: 'amd64' } });
    expect(r.json.info.features).toMatchObject({ cancelable: true, cancel_gracefully: true, trace_checksum: true, trace_size: true, trace_reset: true });
    expect(r.json).not.toHaveProperty('last_update');
  });
});

describe('POST /jobs/request', () => {
  it('201 → the job', async () => {
    gitlab.expect(jobsRequest('job assigned', { status: 201, body: JOB }));
    const r = await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    expect(r).toMatchObject({ kind: 'job', job: { id: 42, token: JOB.token } });
  });

  it('201 that is not application/json → client error, not a job', async () => {
    gitlab.expect(jobsRequest('html 201', { status: 201, headers: { 'Content-Type': 'text/html' }, body: '<html>' }));
    const r = await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    expect(r).toMatchObject({ kind: 'error', status: 201 });
    expect(r.kind === 'error' && r.message).toContain('not application/json');
  });

  it('204 → none; its X-GitLab-Last-Update goes back as last_update next time', async () => {
    gitlab.expect(
      jobsRequest('no job, cursor q1', { status: 204, headers: { 'X-GitLab-Last-Update': 'q1', 'Gitlab-Ci-Builds-Polling': 'yes' } }),
      jobsRequest('no job, no cursor', { status: 204 }),
      jobsRequest('no job', { status: 204 }),
    );
    const first = await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    expect(first).toEqual({ kind: 'none', lastUpdate: 'q1', longPolled: true });
    const second = await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    expect(second).toEqual({ kind: 'none', longPolled: false });
    await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    expect(gitlab.requests.map((r) => r.json.last_update)).toEqual([undefined, 'q1', 'q1']);
  });

  it('keeps cursors per runner token', async () => {
    gitlab.expect(jobsRequest('cursor for A', { status: 204, headers: { 'X-GitLab-Last-Update': 'qa' } }), jobsRequest('B', { status: 204 }));
    await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    await api.requestJob({ token: `glrt-${randomBytes(12).toString('hex')}`, systemId: SYSTEM_ID, info });
    expect(gitlab.requests[1]!.json).not.toHaveProperty('last_update');
  });

  it.each<[string, Reply, object]>([
    ['403 → forbidden', { status: 403, body: { message: '403 Forbidden' } }, { kind: 'forbidden' }],
    ['409 → conflict', { status: 409, body: { message: '409 Conflict' } }, { kind: 'conflict', status: 409 }],
    ['422 → error (orphaned)', { status: 422, body: { message: 'Runner is orphaned' } }, { kind: 'error', status: 422 }],
    ['503 → unavailable', { status: 503, body: { message: 'unavailable' } }, { kind: 'unavailable', status: 503 }],
  ])('%s', async (_name, reply, expected) => {
    // 503 is retried by the transport (5 attempts) before it reaches the caller
    const attempts = reply.status === 503 ? 5 : 1;
    for (let i = 0; i < attempts; i++) gitlab.expect(jobsRequest(`${reply.status} #${i + 1}`, reply));
    const r = await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    expect(r).toMatchObject(expected);
    expect(gitlab.pending).toEqual([]);
  });

  it('429 → retried with Retry-After, then generic failure after 5 attempts', async () => {
    for (let i = 0; i < 5; i++) gitlab.expect(jobsRequest(`429 #${i + 1}`, { status: 429, headers: { 'Retry-After': '60' }, body: { message: 'Retry later' } }));
    const r = await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    expect(r).toMatchObject({ kind: 'error', status: 429 });
    const at = gitlab.requests.map((q) => q.at!);
    expect(at.slice(1).map((t, i) => t - at[i]!)).toEqual([60_000, 60_000, 60_000, 60_000]);
    // one logical request: the same X-Request-Id on every attempt
    expect(new Set(gitlab.requests.map((q) => q.headers['x-request-id'])).size).toBe(1);
  });

  it('429 then 201 → the job', async () => {
    gitlab.expect(jobsRequest('throttled', { status: 429, headers: { 'Retry-After': '1' } }), jobsRequest('job', { status: 201, body: JOB }));
    expect(await api.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info })).toMatchObject({ kind: 'job' });
  });

  it('no answer → error with status 0 and no token in the message', async () => {
    const dead = new RunnerApi({ url: 'http://127.0.0.1:1', requester: new FetchRequester(), userAgent: UA });
    const r = await dead.requestJob({ token: RUNNER_TOKEN, systemId: SYSTEM_ID, info });
    expect(r).toMatchObject({ kind: 'error', status: 0 });
    expect(JSON.stringify(r)).not.toContain(RUNNER_TOKEN);
  });
});

describe('identity endpoints', () => {
  it('verify 200 JSON → id, token, expiry; sends system_id and full info', async () => {
    gitlab.expect({ name: 'verify ok', method: 'POST', path: '/runners/verify', reply: { status: 200, body: { id: 9, token: RUNNER_TOKEN, token_expires_at: '2025-02-01T00:00:00.000Z' } } });
    const v = await api.verify(RUNNER_TOKEN, SYSTEM_ID, info);
    expect(v).toEqual({ id: 9, token: RUNNER_TOKEN, tokenExpiresAt: Date.UTC(2025, 1, 1), legacyResponse: false });
    expect(gitlab.requests[0]!.json).toMatchObject({ token: RUNNER_TOKEN, system_id: SYSTEM_ID, info: { executor: 'docker' } });
  });

  it('verify legacy plain-text 200 → alive', async () => {
    gitlab.expect({ name: 'old gitlab', method: 'POST', path: '/runners/verify', reply: { status: 200, headers: { 'Content-Type': 'text/plain' }, body: '200' } });
    expect(await api.verify(RUNNER_TOKEN, SYSTEM_ID, info)).toEqual({ token: RUNNER_TOKEN, legacyResponse: true });
  });

  it('verify 403 → forbidden error without the token in its message', async () => {
    gitlab.expect({ name: 'bad token', method: 'POST', path: '/runners/verify', reply: { status: 403, body: { message: `403 Forbidden ${RUNNER_TOKEN}` } } });
    const e = (await api.verify(RUNNER_TOKEN, SYSTEM_ID, info).catch((x) => x)) as GitLabApiError;
    expect(e).toBeInstanceOf(GitLabApiError);
    expect(e.kind).toBe('forbidden');
    expect(e.message).toContain('invalid, expired or the runner was removed');
    expect(e.message).not.toContain('RunnerTokenSecret');
  });

  it.each<[number, string, string]>([
    [403, 'forbidden', 'check the registration token'],
    [410, 'gone', 'registration tokens are disabled'],
    [400, 'validation', 'refused the registration parameters'],
  ])('register %i → %s error', async (status, kind, text) => {
    gitlab.expect({ name: `register ${status}`, method: 'POST', path: '/runners', reply: { status, body: { message: 'nope' } } });
    const e = (await api.register('GR1348941RegSecret', { info }).catch((x) => x)) as GitLabApiError;
    expect([e.kind, e.status]).toEqual([kind, status]);
    expect(e.message).toContain(text);
    expect(e.message).not.toContain('RegSecret');
  });

  it('register 201 → the new runner token; tags go as a comma string', async () => {
    gitlab.expect({ name: 'registered', method: 'POST', path: '/runners', reply: { status: 201, body: { id: 3, token: 'runner-token-abcdef', token_expires_at: null } } });
    const r = await api.register('GR1348941RegSecret', { info, tags: ['docker', 'aws'], runUntagged: false, description: 'fleet' });
    expect(r).toEqual({ id: 3, token: 'runner-token-abcdef' });
    expect(gitlab.requests[0]!.json).toMatchObject({ token: 'GR1348941RegSecret', tag_list: 'docker,aws', run_untagged: false, description: 'fleet' });
  });

  it('unregister 204, deleteManager 204/404, resetToken 201', async () => {
    gitlab.expect(
      { name: 'unregister', method: 'DELETE', path: '/runners', reply: { status: 204 } },
      { name: 'manager gone', method: 'DELETE', path: '/runners/managers', reply: { status: 204 } },
      { name: 'manager unknown', method: 'DELETE', path: '/runners/managers', reply: { status: 404, body: { message: '404 Runner manager not found' } } },
      { name: 'reset', method: 'POST', path: '/runners/reset_authentication_token', reply: { status: 201, body: { token: 'glrt-New_1', token_expires_at: '2025-03-01T00:00:00Z' } } },
    );
    await api.unregister('runner-token-abcdef');
    expect(await api.deleteManager(RUNNER_TOKEN, SYSTEM_ID)).toBe('deleted');
    expect(await api.deleteManager(RUNNER_TOKEN, SYSTEM_ID)).toBe('not_found');
    expect(await api.resetToken(RUNNER_TOKEN)).toEqual({ token: 'glrt-New_1', tokenExpiresAt: Date.UTC(2025, 2, 1) });
    expect(gitlab.requests[1]!.json).toEqual({ token: RUNNER_TOKEN, system_id: SYSTEM_ID });
  });
});
