// The strict fake GitLab renders the jobs/request 201 body as Rails does, nulls included, and serves
// Rails-shaped contract fixtures (test/fixtures/gitlab/) laid over its own rendering.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeGitLab } from '../../src/fakegitlab/index.js';
import type { JobSpec, PipelineOptions, RailsJobPayload } from '../../src/fakegitlab/index.js';

const FEATURES = {
  variables: true, image: true, services: true, artifacts: true, cache: true, upload_multiple_artifacts: true,
  upload_raw_artifacts: true, refspecs: true, masking: true, raw_variables: true, artifacts_exclude: true,
  multi_build_steps: true, trace_reset: true, trace_checksum: true, trace_size: true, cancelable: true,
  return_exit_code: true, cancel_gracefully: true, fallback_cache_keys: true,
};
const FIXTURES = join(import.meta.dirname, '../fixtures/gitlab');
const fixtureNames = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));

let fake: FakeGitLab;
let runnerToken: string;

beforeEach(async () => {
  fake = new FakeGitLab();
  await fake.start();
  runnerToken = fake.addRunner().token;
});
afterEach(async () => fake.stop());

type Variable = { key: string; value: string | null; public: boolean; masked: boolean; file?: boolean; raw?: boolean };

/** One jobs/request; returns the raw text too, to see what is on the wire. */
async function request(features: Record<string, boolean> = FEATURES) {
  const res = await fetch(`${fake.url}/api/v4/jobs/request`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: runnerToken, system_id: 's_0123456789ab', info: { features } }),
  });
  const text = await res.text();
  return { status: res.status, text, job: (text ? JSON.parse(text) : undefined) as RailsJobPayload & Record<string, unknown> };
}

async function take() {
  const r = await request();
  expect(r.status).toBe(201);
  const ack = await put(r.job, { state: 'running' });
  expect(ack.status).toBe(200);
  return r;
}

function put(job: { id: number; token: string }, body: Record<string, unknown>) {
  return fetch(`${fake.url}/api/v4/jobs/${job.id}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', 'JOB-TOKEN': job.token },
    body: JSON.stringify({ token: job.token, ...body }),
  });
}

async function pipelineWith(jobs: JobSpec[], opts: PipelineOptions = {}, project: { description?: string } = {}) {
  const p = await fake.createProject({ path: 'group/app', files: { 'README.md': 'hello\n' }, ...project });
  return fake.createPipeline(p, jobs, opts);
}

/** The fake's own rendering of a plain job (on a throwaway fake), to know which variable keys it owns. */
async function ownRendering(): Promise<RailsJobPayload> {
  const other = new FakeGitLab();
  await other.start();
  try {
    const token = other.addRunner().token;
    const p = await other.createProject({ path: 'group/app', files: { 'README.md': 'x\n' } });
    await other.createPipeline(p, [{ name: 'plain', script: ['true'] }]);
    const res = await fetch(`${other.url}/api/v4/jobs/request`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token, system_id: 's_0123456789ab', info: { features: FEATURES } }),
    });
    return (await res.json()) as RailsJobPayload;
  } finally {
    await other.stop();
  }
}

const vars = (job: { variables: Variable[] | unknown }) => job.variables as Variable[];
const varOf = (job: { variables: unknown }, key: string) => vars(job as { variables: Variable[] }).filter((v) => v.key === key);

describe('Rails nulls in the fake\'s own rendering', () => {
  it('renders a plain job with null image, null artifacts, empty lists and null-valued variables', async () => {
    await pipelineWith([{ name: 'plain', script: ['true'] }]);
    const { text, job } = await take();
    expect(text).toContain('"image":null');
    expect(job.image).toBeNull();
    expect(job.services).toEqual([]);
    expect(job.artifacts).toBeNull();
    expect(job.cache).toEqual([]);
    expect(job.hooks).toEqual([]);
    expect(job.credentials).toEqual([]);
    expect(job.dependencies).toEqual([]);
    expect(job.runner_info.runner_session_url).toBeNull();
    expect(job.runner_info.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof job.job_info.instance_id).toBe('string');
    expect(job.job_info.scoped_user_id).toBeNull();
    expect(text).toContain('"key":"CI_PIPELINE_NAME","value":null');
    expect(varOf(job, 'CI_PIPELINE_NAME')).toEqual([{ key: 'CI_PIPELINE_NAME', value: null, public: true, masked: false }]);
    expect(varOf(job, 'CI_PROJECT_DESCRIPTION')[0]?.value).toBeNull();
    expect(varOf(job, 'CI_RUNNER_DESCRIPTION')[0]?.value).toBeNull();
    // Keys in the entity's order.
    expect(Object.keys(job)).toEqual([
      'id', 'token', 'allow_git_fetch', 'job_info', 'git_info', 'runner_info', 'variables', 'steps', 'hooks', 'image',
      'services', 'artifacts', 'cache', 'credentials', 'features', 'dependencies',
    ]);
    expect(fake.violations).toEqual([]);
  });

  it('sets CI_PIPELINE_NAME and CI_PROJECT_DESCRIPTION from workflow:name and the project description', async () => {
    await pipelineWith(
      [{ name: 'named', script: ['true'], variables: { TITLE: 'pipeline $CI_PIPELINE_NAME' } }],
      { name: 'Nightly build' },
      { description: 'Fixture project' },
    );
    const { job } = await take();
    expect(varOf(job, 'CI_PIPELINE_NAME')[0]?.value).toBe('Nightly build');
    expect(varOf(job, 'CI_PROJECT_DESCRIPTION')[0]?.value).toBe('Fixture project');
    expect(varOf(job, 'TITLE')[0]?.value).toBe('pipeline Nightly build');
  });

  it('expands a reference to a null variable to "" and leaves raw and file references alone', async () => {
    await pipelineWith([
      {
        name: 'refs',
        script: ['true'],
        variables: { NAME_REF: '[$CI_PIPELINE_NAME]', RAWV: { value: 'r', raw: true }, FILEV: { value: 'f', file: true }, REFS: '$RAWV $FILEV' },
      },
    ]);
    const { job } = await take();
    expect(varOf(job, 'NAME_REF')[0]?.value).toBe('[]');
    expect(varOf(job, 'REFS')[0]?.value).toBe('$RAWV $FILEV');
  });

  it('renders image and services as the Image / Service entities do', async () => {
    await pipelineWith([
      {
        name: 'svc',
        script: ['true'],
        image: { name: 'alpine:latest', docker: { user: 1000 }, pull_policy: 'if-not-present' },
        services: [
          'docker:dind',
          { name: 'postgres:16', alias: 'db,postgres', variables: { POSTGRES_DB: 'app' } },
          { name: 'redis:7', alias: 'cache', entrypoint: ['/bin/sh', '-c'], command: ['sleep 600'], ports: [6379, { number: 8443, protocol: 'https' }] },
        ],
      },
    ]);
    const { job } = await take();
    expect(job.image).toEqual({ name: 'alpine:latest', entrypoint: null, ports: [], executor_opts: { docker: { user: 1000 } }, pull_policy: ['if-not-present'] });
    expect(Object.keys(job.image!)).toEqual(['name', 'entrypoint', 'ports', 'executor_opts', 'pull_policy']);
    expect(job.services).toEqual([
      { name: 'docker:dind', entrypoint: null, ports: [], executor_opts: {}, pull_policy: null, alias: null, command: null, variables: [] },
      {
        name: 'postgres:16', entrypoint: null, ports: [], executor_opts: {}, pull_policy: null, alias: 'db,postgres', command: null,
        variables: [{ key: 'POSTGRES_DB', value: 'app' }],
      },
      {
        name: 'redis:7', entrypoint: ['/bin/sh', '-c'], executor_opts: {}, pull_policy: null, alias: 'cache', command: ['sleep 600'], variables: [],
        ports: [{ number: 6379, protocol: 'http', name: 'default_port' }, { number: 8443, protocol: 'https', name: 'default_port' }],
      },
    ]);
  });

  it('renders artifacts and cache entries with the keys Rails leaves null or out', async () => {
    await pipelineWith([
      { name: 'a', script: ['true'], artifacts: { paths: ['out/'], reports: { junit: ['junit.xml'] } }, cache: { paths: ['vendor/'] } },
      { name: 'b', script: ['true'], artifacts: { untracked: true, expire_in: '1 day' }, cache: { key: '$CI_JOB_NAME', untracked: true, policy: '$CACHE_POLICY', fallback_keys: ['main'] } },
      { name: 'c', script: ['true'], artifacts: { when: 'always' } },
    ]);
    const a = (await take()).job;
    expect(a.artifacts).toEqual([
      { name: null, paths: ['out/'], when: null, expire_in: null, artifact_type: 'archive', artifact_format: 'zip' },
      { name: 'junit.xml.gz', paths: ['junit.xml'], when: 'always', expire_in: null, artifact_type: 'junit', artifact_format: 'gzip' },
    ]);
    expect(a.artifacts![0]).not.toHaveProperty('untracked');
    expect(a.cache).toEqual([{ key: 'default-protected', untracked: null, paths: ['vendor/'], policy: 'pull-push', when: 'on_success', fallback_keys: [] }]);
    const b = (await take()).job;
    expect(b.artifacts).toEqual([{ name: null, untracked: true, paths: null, when: null, expire_in: '1 day', artifact_type: 'archive', artifact_format: 'zip' }]);
    expect(b.cache).toEqual([
      { key: '$CI_JOB_NAME-protected', untracked: true, paths: null, policy: '$CACHE_POLICY', when: 'on_success', fallback_keys: ['main-protected'] },
    ]);
    const c = (await take()).job;
    expect(c.artifacts).toEqual([]); // `artifacts:` without paths, untracked or reports
  });

  it('renders hooks as [{name, script}]', async () => {
    await pipelineWith([{ name: 'h', script: ['true'], hooks: { pre_get_sources_script: ['echo pre'], post_get_sources_script: ['echo post'] } }]);
    const { job } = await take();
    expect(job.hooks).toEqual([{ name: 'pre_get_sources_script', script: ['echo pre'] }, { name: 'post_get_sources_script', script: ['echo post'] }]);
  });

  it('renders a dependency without artifacts_file when it uploaded none', async () => {
    await pipelineWith([
      { name: 'prepare', stage: 'build', script: ['true'] },
      { name: 'use', stage: 'test', script: ['true'] },
    ]);
    const prep = (await take()).job;
    await put(prep, { state: 'success', output: { checksum: `crc32:${crc32(Buffer.alloc(0)).toString(16).padStart(8, '0')}`, bytesize: 0 } });
    const use = (await take()).job;
    expect(use.dependencies).toEqual([{ id: prep.id, name: 'prepare', token: use.token }]);
  });
});

describe('fixture overlay (JobSpec.payload)', () => {
  const OWNED = new Set(['id', 'token', 'git_info', 'features', 'dependencies', 'job_info', 'runner_info', 'variables', 'steps', 'credentials']);

  it('has fixtures that are full Rails bodies without anything that looks like a real token', () => {
    expect(fixtureNames.length).toBeGreaterThanOrEqual(10);
    for (const name of fixtureNames) {
      const text = readFileSync(join(FIXTURES, name), 'utf8');
      expect(text, name).not.toMatch(/glpat-|glrt-|glcbt-|glrtr-|gldt-/);
      const body = JSON.parse(text) as Record<string, unknown>;
      for (const key of ['id', 'token', 'allow_git_fetch', 'job_info', 'git_info', 'runner_info', 'variables', 'steps', 'hooks', 'image', 'services', 'artifacts', 'cache', 'credentials', 'features', 'dependencies']) {
        expect(body, `${name} lacks ${key}`).toHaveProperty(key);
      }
      expect(body.id).toBe(0);
      expect(body.token).toBe('');
    }
  });

  it.each(fixtureNames)('serves %s as given, keeping what the fake owns', async (name) => {
    const f = fixture(name);
    const p = await pipelineWith([{ name: 'fx', payload: f }]);
    const { job } = await take();
    expect(job.id).toBe(p.jobIds[0]);
    expect(job.token).toMatch(/^glcbt-/);
    expect(job.git_info.sha).toBe(p.sha);
    for (const [key, value] of Object.entries(f)) {
      if (!OWNED.has(key)) expect(job[key], key).toEqual(value);
    }
    expect(job.steps).toEqual(f.steps); // no script in the spec: the fixture's steps
    expect(job.job_info).toMatchObject({ id: job.id, name: 'fx', stage: 'test', pipeline_id: p.id, project_full_path: 'group/app', namespace_id: p.projectId + 1000 });
    expect(job.job_info.instance_id).not.toBe('');
    expect(job.job_info.scoped_user_id).toBeNull(); // from the fixture
    expect(job.runner_info.timeout).toBe(3600);
    if (Array.isArray(f.credentials)) {
      expect((job.credentials as Array<{ password: string }>).every((c) => c.password === job.token)).toBe(true);
    }
    // The fake's predefined variables stay, once each (CI_JOB_TOKEN with the real token); the fixture's
    // other variables are appended as given.
    expect(varOf(job, 'CI_JOB_TOKEN')).toEqual([{ key: 'CI_JOB_TOKEN', value: job.token, public: false, masked: true }]);
    for (const v of f.variables as Variable[]) expect(varOf(job, v.key), v.key).toHaveLength(1);
    const ownKeys = new Set(((await ownRendering()).variables as Variable[]).map((v) => v.key));
    const appended = (f.variables as Variable[]).filter((v) => !ownKeys.has(v.key));
    expect(vars(job).slice(vars(job).length - appended.length)).toEqual(appended);
    expect(fake.violations).toEqual([]);
  });

  it('keeps CI_PIPELINE_NAME the fake\'s: null without a name, the name with one', async () => {
    const project = await fake.createProject({ path: 'group/app', files: { 'README.md': 'x\n' }, description: 'Fixture project' });
    const set = fixture('pipeline-name-set.json');
    await fake.createPipeline(project, [{ name: 'a', payload: set }], { name: 'Nightly build' });
    const named = (await take()).job;
    for (const key of ['CI_PIPELINE_NAME', 'CI_PROJECT_DESCRIPTION']) {
      expect(varOf(named, key)).toEqual((set.variables as Variable[]).filter((v) => v.key === key));
    }
    const unset = fixture('pipeline-name-unset.json');
    await fake.createPipeline(project, [{ name: 'b', payload: unset }]);
    const unnamed = (await take()).job;
    expect(varOf(unnamed, 'CI_PIPELINE_NAME')).toEqual((unset.variables as Variable[]).filter((v) => v.key === 'CI_PIPELINE_NAME'));
    expect(varOf(unnamed, 'CI_PIPELINE_NAME')[0]?.value).toBeNull();
  });

  it('serves the fake\'s steps when the spec has a script, and no steps for a run-only fixture', async () => {
    const project = await fake.createProject({ path: 'group/app', files: { 'README.md': 'x\n' } });
    const f = fixture('hooks.json');
    await fake.createPipeline(project, [
      { name: 'scripted', script: ['echo mine'], payload: f },
      { name: 'run-only', payload: { run: '[{"name":"hello","script":"echo hi"}]' } },
    ]);
    const scripted = (await take()).job;
    expect(scripted.steps).toEqual([{ name: 'script', script: ['echo mine'], timeout: 3600, when: 'on_success', allow_failure: false }]);
    expect(scripted.hooks).toEqual(f.hooks);
    const runOnly = await take();
    expect(runOnly.job.run).toBe('[{"name":"hello","script":"echo hi"}]');
    expect(runOnly.job.steps).toBeUndefined();
    expect(runOnly.text).not.toContain('"steps"');
  });

  it('refuses a job with neither script nor fixture steps', async () => {
    const project = await fake.createProject({ path: 'group/app', files: { 'README.md': 'x\n' } });
    await expect(fake.createPipeline(project, [{ name: 'empty' }])).rejects.toThrow(/needs a script/);
    await expect(fake.createPipeline(project, [{ name: 'bad', payload: { variables: {} } }])).rejects.toThrow(/variables/);
  });

  it('requires the runner features the served fixture needs (junit report → upload_multiple_artifacts)', async () => {
    await pipelineWith([{ name: 'sparse', payload: fixture('sparse-entries.json') }, { name: 'other', script: ['true'] }]);
    const r = await request({ ...FEATURES, upload_multiple_artifacts: false });
    expect(r.job.job_info.name).toBe('other');
    expect(fake.takeViolations().join()).toMatch(/check 3.*upload_multiple_artifacts/);
  });

  it('accepts uploads and a successful end for a fixture with `when: null` artifacts', async () => {
    await pipelineWith([{ name: 'sparse', payload: fixture('sparse-entries.json') }]);
    const { job } = await take();
    const form = new FormData();
    form.append('file', new Blob(['PK']), 'artifacts.zip');
    const up = await fetch(`${fake.url}/api/v4/jobs/${job.id}/artifacts?artifact_format=zip&artifact_type=archive`, {
      method: 'POST',
      headers: { 'JOB-TOKEN': job.token },
      body: form,
    });
    expect(up.status).toBe(201);
    const done = await put(job, { state: 'success', output: { checksum: `crc32:${crc32(Buffer.alloc(0)).toString(16).padStart(8, '0')}`, bytesize: 0 } });
    expect(done.status).toBe(200);
    expect(fake.violations).toEqual([]);
  });
});
