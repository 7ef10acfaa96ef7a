// Every contract fixture (test/fixtures/gitlab: 201 bodies as Rails renders them) goes through the one
// parse boundary: it is accepted, nothing null survives, and the fields each fixture is about come out as
// gitlab-runner would read them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobPayload } from '../../../src/core/index.js';
import { parseJobPayload } from '../../../src/gitlab/job-payload.js';
import { expandedImageNames } from '../../../src/jobs/containers.js';

const DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'gitlab');
const names = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5));

function load(name: string): JobPayload {
  const body = JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as Record<string, unknown>;
  // The fixtures hold placeholders where the fake puts the job's id and token.
  const r = parseJobPayload({ ...body, id: 17, token: 'placeholder-job-token' });
  if (!r.ok) throw new Error(`${name}: ${r.problems.join('; ')}`);
  return r.job;
}

/** Where a null (or undefined) value sits in `v`, as paths. */
function nullPaths(v: unknown, at = ''): string[] {
  if (v === null || v === undefined) return [at];
  if (typeof v !== 'object') return [];
  return Object.entries(v).flatMap(([k, x]) => nullPaths(x, `${at}.${k}`));
}

const variable = (job: JobPayload, key: string) => job.variables.find((v) => v.key === key);

describe('Rails-shaped fixtures through parseJobPayload', () => {
  it('has the fixtures the contract asks for', () => {
    expect(names).toEqual(expect.arrayContaining(['pipeline-name-unset', 'pipeline-name-set', 'services', 'image-from-variable', 'docker-user-int', 'cache-policy-variable', 'sparse-entries', 'null-lists']));
  });

  it.each(names)('%s parses with no null left anywhere', (name) => {
    const job = load(name);
    expect(nullPaths(job)).toEqual([]);
    expect(job.variables.every((v) => typeof v.value === 'string')).toBe(true);
  });

  it('pipeline without workflow:name: CI_PIPELINE_NAME and CI_PROJECT_DESCRIPTION are set and empty', () => {
    const job = load('pipeline-name-unset');
    expect(variable(job, 'CI_PIPELINE_NAME')?.value).toBe('');
    expect(variable(job, 'CI_PROJECT_DESCRIPTION')?.value).toBe('');
    expect(load('pipeline-name-set').variables.find((v) => v.key === 'CI_PIPELINE_NAME')?.value).toBe('Nightly build');
  });

  it('services: every image and service field as gitlab-runner reads it', () => {
    const job = load('services');
    expect(job.image).toMatchObject({ name: 'alpine:latest', entrypoint: [''], pull_policy: ['if-not-present'], executor_opts: { docker: { platform: 'linux/amd64' } } });
    const [dind, pg, redis] = job.services;
    expect(dind).toEqual({ name: 'docker:dind', entrypoint: [], command: [], ports: [], variables: [], pull_policy: [], executor_opts: { docker: {} } });
    expect(pg).toMatchObject({ alias: 'db,postgres', variables: [{ key: 'POSTGRES_DB', value: 'app' }, { key: 'POSTGRES_HOST_AUTH_METHOD', value: 'trust' }] });
    expect(redis).toMatchObject({
      alias: 'cache kv',
      entrypoint: ['/bin/sh', '-c'],
      command: ['sleep 600'],
      ports: [{ number: 6379, protocol: 'http', name: 'default_port' }],
      pull_policy: ['if-not-present', 'always'],
      executor_opts: { docker: { platform: 'linux/amd64', user: 'nobody' } },
    });
  });

  it('image from a variable: the name stays as sent and expands before use', () => {
    const job = load('image-from-variable');
    expect(job.image?.name).toBe('$CI_REGISTRY_IMAGE/builder:1');
    expect(expandedImageNames(job)).toEqual({ image: 'registry.gitlab.invalid/group/app/builder:1', services: [] });
  });

  it('integer docker user becomes the string gitlab-runner uses', () => {
    expect(load('docker-user-int').image?.executor_opts.docker.user).toBe('1000');
  });

  it('cache policy from a variable is kept for the job to expand', () => {
    expect(load('cache-policy-variable').cache).toEqual([{ key: 'deps-protected', untracked: false, paths: ['vendor/'], policy: '$CACHE_POLICY', when: 'on_success', fallback_keys: [] }]);
  });

  it('sparse and untracked-only entries get their defaults', () => {
    const sparse = load('sparse-entries');
    expect(sparse.artifacts[0]).toEqual({ untracked: false, paths: ['out/'], exclude: [], when: 'on_success', artifact_type: 'archive', artifact_format: 'zip' });
    expect(sparse.artifacts[1]).toMatchObject({ name: 'junit.xml.gz', untracked: false, when: 'always', artifact_type: 'junit', artifact_format: 'gzip' });
    expect(sparse.cache[0]).toMatchObject({ untracked: false, paths: ['vendor/'] });
    expect(sparse.dependencies).toEqual([{ id: 0, name: 'prepare', token: '' }]);
    const untracked = load('untracked-only');
    expect(untracked.artifacts[0]).toMatchObject({ untracked: true, paths: [] });
    expect(untracked.cache[0]).toMatchObject({ untracked: true, paths: [] });
  });

  it('null lists and a null image read as empty and absent', () => {
    const job = load('null-lists');
    expect(job.image).toBeUndefined();
    expect([job.services, job.cache, job.credentials, job.hooks, job.dependencies, job.artifacts]).toEqual([[], [], [], [], [], []]);
    expect(load('legacy-service-variables').services[0]?.variables).toEqual([]);
    expect(load('hooks').hooks.map((h) => h.name)).toEqual(['pre_get_sources_script', 'post_get_sources_script']);
  });
});
