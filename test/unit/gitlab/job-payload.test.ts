import { describe, expect, it } from 'vitest';
import { parseJobPayload, jobStub } from '../../../src/gitlab/job-payload.js';

const base = {
  id: 42,
  token: 'job-token-placeholder',
  allow_git_fetch: true,
  job_info: { id: 42, name: 'build', stage: 'test', project_id: 7, project_name: 'app', project_full_path: 'group/app' },
  git_info: { repo_url: 'http://gitlab.invalid/group/app.git', ref: 'main', sha: 'a'.repeat(40), before_sha: '0'.repeat(40), ref_type: 'branch', refspecs: [], depth: 20, repo_object_format: 'sha1', protected: false },
  runner_info: { timeout: 3600, runner_session_url: null },
  variables: [],
  steps: [{ name: 'script', script: ['echo hi'], timeout: 3600, when: 'on_success', allow_failure: false }],
};

function parse(over: Record<string, unknown>) {
  const r = parseJobPayload({ ...base, ...over });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.job;
}

describe('parseJobPayload: Rails nulls become gitlab-runner defaults', () => {
  it('turns a null variable value into the empty string and keeps the variable', () => {
    const job = parse({
      variables: [
        { key: 'CI_PIPELINE_NAME', value: null, public: true, masked: false },
        { key: 'CI_PROJECT_DESCRIPTION', value: null, public: true, masked: false },
      ],
    });
    expect(job.variables).toEqual([
      { key: 'CI_PIPELINE_NAME', value: '', public: true, masked: false },
      { key: 'CI_PROJECT_DESCRIPTION', value: '', public: true, masked: false },
    ]);
  });

  it('keeps file and raw flags only when true', () => {
    const job = parse({ variables: [{ key: 'A', value: 'x', public: true, masked: false, file: false, raw: null }, { key: 'B', value: 'y', file: true, raw: true }] });
    expect(job.variables).toEqual([{ key: 'A', value: 'x', public: true, masked: false }, { key: 'B', value: 'y', file: true, raw: true }]);
  });

  it('reads an image as the Image entity renders it, nulls included', () => {
    const job = parse({
      image: { name: 'ruby:3.3', entrypoint: null, ports: [], executor_opts: {}, pull_policy: null },
      services: [{ name: 'postgres:16', entrypoint: null, ports: [], executor_opts: {}, pull_policy: null, alias: null, command: null, variables: [] }],
    });
    expect(job.image).toEqual({ name: 'ruby:3.3', entrypoint: [], command: [], ports: [], variables: [], pull_policy: [], executor_opts: { docker: {} } });
    expect(job.services).toEqual([{ name: 'postgres:16', entrypoint: [], command: [], ports: [], variables: [], pull_policy: [], executor_opts: { docker: {} } }]);
  });

  it('accepts null service variables (older GitLab) and null image / services', () => {
    expect(parse({ image: null, services: null })).toMatchObject({ services: [] });
    expect(parse({ image: null }).image).toBeUndefined();
    expect(parse({ services: [{ name: 'redis:7', variables: null }] }).services[0]?.variables).toEqual([]);
  });

  it('keeps every image field gitlab-runner reads when present; an integer docker user becomes a string', () => {
    const job = parse({
      image: { name: 'img:1', entrypoint: [''], command: ['run'], ports: [{ number: 80, protocol: null, name: null }], pull_policy: ['if-not-present'], executor_opts: { docker: { platform: 'linux/arm64', user: 1000 } } },
    });
    expect(job.image).toEqual({
      name: 'img:1',
      entrypoint: [''],
      command: ['run'],
      ports: [{ number: 80, protocol: 'http' }],
      variables: [],
      pull_policy: ['if-not-present'],
      executor_opts: { docker: { platform: 'linux/arm64', user: '1000' } },
    });
    expect(parse({ image: { name: 'img:1', executor_opts: { docker: { user: 'app:app' } } } }).image?.executor_opts.docker.user).toBe('app:app');
    expect(parse({ image: { name: 'img:1', executor_opts: { docker: null } } }).image?.executor_opts).toEqual({ docker: {} });
  });

  it('treats null or missing lists (artifacts, cache, credentials, dependencies, hooks, steps) as empty', () => {
    const job = parse({ artifacts: null, cache: null, credentials: null, dependencies: null, hooks: null, steps: null });
    expect([job.artifacts, job.cache, job.credentials, job.dependencies, job.hooks, job.steps]).toEqual([[], [], [], [], [], []]);
    const bare = parseJobPayload({ id: 1, token: 't', git_info: { repo_url: 'u', ref: 'r', sha: 's' } });
    expect(bare.ok).toBe(true);
  });

  it('fills artifact entries with keys missing or null', () => {
    const job = parse({ artifacts: [{ name: null, paths: null, when: null, expire_in: null, artifact_type: 'archive', artifact_format: 'zip' }, { paths: ['out/'] }] });
    expect(job.artifacts).toEqual([
      { untracked: false, paths: [], exclude: [], when: 'on_success', artifact_type: 'archive', artifact_format: 'zip' },
      { untracked: false, paths: ['out/'], exclude: [], when: 'on_success', artifact_type: 'archive', artifact_format: 'zip' },
    ]);
  });

  it('keeps a cache policy as sent (a variable is expanded when the job runs)', () => {
    const job = parse({ cache: [{ key: 'k', untracked: null, paths: ['vendor/'], policy: '$CACHE_POLICY', when: null, fallback_keys: null }] });
    expect(job.cache).toEqual([{ key: 'k', untracked: false, paths: ['vendor/'], policy: '$CACHE_POLICY', when: 'on_success', fallback_keys: [] }]);
    expect(parse({ cache: [{ key: 'k', policy: null }] }).cache[0]?.policy).toBe('');
  });

  it('drops a dependency artifacts_file that is null or nameless', () => {
    const job = parse({
      dependencies: [
        { id: 1, name: 'a', token: 't', artifacts_file: null },
        { id: 2, name: 'b', token: 't' },
        { id: 3, name: 'c', token: 't', artifacts_file: { filename: 'artifacts.zip', size: 12 } },
      ],
    });
    expect(job.dependencies).toEqual([
      { id: 1, name: 'a', token: 't' },
      { id: 2, name: 'b', token: 't' },
      { id: 3, name: 'c', token: 't', artifacts_file: { filename: 'artifacts.zip', size: 12 } },
    ]);
  });

  it('reads steps with null timeout or when, and a null runner_session_url as unset', () => {
    const job = parse({ steps: [{ name: 'script', script: ['true'], timeout: null, when: null, allow_failure: null }] });
    expect(job.steps).toEqual([{ name: 'script', script: ['true'], when: 'on_success', allow_failure: false }]);
    expect(job.runner_info).toEqual({ timeout: 3600 });
  });

  it('reads a negative git depth (Rails sends GIT_DEPTH.to_i, so "-1" is -1) as 0, a full fetch', () => {
    expect(parse({ git_info: { ...base.git_info, depth: -1 } }).git_info.depth).toBe(0);
    expect(parse({ git_info: { ...base.git_info, depth: null } }).git_info.depth).toBe(0);
    expect(parse({ git_info: { ...base.git_info, depth: 50 } }).git_info.depth).toBe(50);
  });

  it('leaves out keys it does not use and never yields a null anywhere', () => {
    const job = parse({ job_info: { ...base.job_info, scoped_user_id: null, namespace_id: 9 }, features: { trace_sections: true, failure_reasons: null, token_mask_prefixes: null }, secrets: null, inputs: null, policy_options: null });
    expect(job.job_info).toEqual(base.job_info);
    expect(job.features).toEqual({ trace_sections: true, token_mask_prefixes: [] });
    expect(JSON.stringify(job)).not.toMatch(/:null\b/);
  });
});

describe('parseJobPayload: malformed bodies', () => {
  it('names every wrong field by its path and still says which job it is', () => {
    const r = parseJobPayload({ ...base, variables: [{ key: 'A', value: 1 }], services: [{ name: 'x', alias: 7 }], features: { failure_reasons: ['script_failure'] } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.some((p) => p.startsWith('variables[0].value: '))).toBe(true);
    expect(r.problems.some((p) => p.startsWith('services[0].alias: '))).toBe(true);
    expect(r).toMatchObject({ id: 42, token: 'job-token-placeholder', failureReasons: ['script_failure'] });
  });

  it('cannot identify a job without an id and a token', () => {
    for (const body of [null, [], 'text', { token: 't' }, { id: 3 }, { id: 0, token: 't' }]) {
      const r = parseJobPayload(body);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.id === undefined || r.token === undefined).toBe(true);
    }
  });

  it('makes a stand-in that can be failed but not run', () => {
    const job = jobStub(5, 'tok', ['script_failure']);
    expect(job).toMatchObject({ id: 5, token: 'tok', steps: [], services: [], features: { failure_reasons: ['script_failure'] } });
  });
});
