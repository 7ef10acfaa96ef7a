import { describe, expect, it } from 'vitest';

import type { JobPayload } from '../../../src/core/index.js';
import { normalizeRegistry, registryOf, repositoryOf } from '../../../src/executors/docker/image-ref.js';
import { resolvePullPolicies } from '../../../src/executors/docker/pull-policy.js';
import { coversRegistry, pullAuthConfig, renderDockerConfig } from '../../../src/executors/docker/registry-auth.js';
import { jobPayload } from '../../helpers/job-payload.js';

const cfg = (pullPolicy: 'always' | 'if-not-present' | 'never', allowed: Array<'always' | 'if-not-present' | 'never'> = ['always', 'if-not-present', 'never']) => ({
  pullPolicy,
  allowedPullPolicies: allowed,
});

describe('pull policy resolution', () => {
  it.each([
    [undefined, cfg('always'), { ok: true, policies: ['always'] }],
    [[], cfg('if-not-present'), { ok: true, policies: ['if-not-present'] }],
    [['never'], cfg('always'), { ok: true, policies: ['never'] }],
    [['always', 'if-not-present'], cfg('never'), { ok: true, policies: ['always', 'if-not-present'] }],
    [['IF-NOT-PRESENT', 'if-not-present'], cfg('always'), { ok: true, policies: ['if-not-present'] }],
  ])('job %j with default %j → %j', (requested, config, expected) => {
    expect(resolvePullPolicies(requested, config)).toEqual(expected);
  });

  it('refuses a job policy outside the allowed list, naming both', () => {
    expect(resolvePullPolicies(['always'], cfg('never', ['never', 'if-not-present']))).toEqual({
      ok: false,
      message: 'pull_policy [always] defined in the job is not one of the allowed_pull_policies [never if-not-present]',
    });
  });

  it('refuses a default policy outside the allowed list', () => {
    const d = resolvePullPolicies(undefined, cfg('always', ['never']));
    expect(d.ok).toBe(false);
    expect(!d.ok && d.message).toContain("defined in the executor's config");
  });

  it('refuses an unknown policy', () => {
    const d = resolvePullPolicies(['sometimes'], cfg('always'));
    expect(!d.ok && d.message).toContain('unsupported pull_policy [sometimes]');
  });
});

describe('image references', () => {
  it.each([
    ['alpine', 'alpine', 'docker.io'],
    ['alpine:3.20', 'alpine', 'docker.io'],
    ['library/alpine:3', 'library/alpine', 'docker.io'],
    ['registry.gitlab.com/grp/img:1', 'registry.gitlab.com/grp/img', 'registry.gitlab.com'],
    ['localhost:5000/img', 'localhost:5000/img', 'localhost:5000'],
    ['localhost/img:1', 'localhost/img', 'localhost'],
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:abc', '123456789012.dkr.ecr.eu-west-1.amazonaws.com/app', '123456789012.dkr.ecr.eu-west-1.amazonaws.com'],
  ])('%s → repository %s on %s', (image, repo, registry) => {
    expect(repositoryOf(image)).toBe(repo);
    expect(registryOf(image)).toBe(registry);
  });

  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['https://Registry.Example.com/v2/', 'registry.example.com'],
    ['reg.io:5000', 'reg.io:5000'],
  ])('normalizes %s to %s', (raw, expected) => {
    expect(normalizeRegistry(raw)).toBe(expected);
  });
});

const job = (over: Partial<JobPayload>): JobPayload => ({
  ...jobPayload({
    id: 1,
    token: 't',
    job_info: { name: 't', project_id: 1 },
    git_info: { repo_url: 'https://x/g/p.git', ref: 'main', sha: '0'.repeat(40) },
    runner_info: {},
    variables: [],
  }),
  ...over,
});

describe('pull credentials', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('takes DOCKER_AUTH_CONFIG first, then coordinator logins, then the job credentials; collects every secret', () => {
    const c = pullAuthConfig(
      job({
        variables: [
          {
            key: 'DOCKER_AUTH_CONFIG',
            value: JSON.stringify({
              auths: { 'https://reg.one.test/v2/': { auth: b64('u1:pw-from-variable') }, 'reg.two.test': { username: 'u2', password: 'pw-two' } },
              credHelpers: { 'reg.helper.test': 'ecr-login' },
            }),
          },
        ],
        credentials: [
          { type: 'registry', url: 'reg.one.test', username: 'gitlab-ci-token', password: 'job-token-loses' },
          { type: 'registry', url: 'registry.gitlab.test', username: 'gitlab-ci-token', password: 'job-token' },
          { type: 'other', url: 'x.test', username: 'a', password: 'not-a-registry' },
        ],
      }),
      [
        { registry: 'reg.two.test', username: 'AWS', password: 'loses-to-variable' },
        { registry: '1.dkr.ecr.eu-west-1.amazonaws.com', username: 'AWS', password: 'ecr-pw' },
      ],
    );
    expect(c.auths.get('reg.one.test')).toBe(b64('u1:pw-from-variable'));
    expect(c.auths.get('reg.two.test')).toBe(b64('u2:pw-two'));
    expect(c.auths.get('1.dkr.ecr.eu-west-1.amazonaws.com')).toBe(b64('AWS:ecr-pw'));
    expect(c.auths.get('registry.gitlab.test')).toBe(b64('gitlab-ci-token:job-token'));
    expect(c.credHelpers.get('reg.helper.test')).toBe('ecr-login');
    expect(c.secrets).toEqual(expect.arrayContaining(['pw-from-variable', 'pw-two', 'ecr-pw', 'job-token', b64('AWS:ecr-pw')]));
    expect(c.secrets).not.toContain('not-a-registry');
    expect(coversRegistry(c, registryOf('reg.helper.test/img'))).toBe(true);
    expect(coversRegistry(c, registryOf('alpine'))).toBe(false);

    const rendered = JSON.parse(renderDockerConfig(c)) as { auths: Record<string, { auth: string }>; credHelpers: Record<string, string> };
    expect(Object.keys(rendered.auths).sort()).toEqual(['1.dkr.ecr.eu-west-1.amazonaws.com', 'reg.one.test', 'reg.two.test', 'registry.gitlab.test']);
    expect(rendered.credHelpers).toEqual({ 'reg.helper.test': 'ecr-login' });
  });

  it('writes Docker Hub under its historical key', () => {
    const c = pullAuthConfig(job({}), [{ registry: 'docker.io', username: 'me', password: 'hub-pw' }]);
    expect(Object.keys((JSON.parse(renderDockerConfig(c)) as { auths: object }).auths)).toEqual(['https://index.docker.io/v1/']);
    expect(coversRegistry(c, registryOf('library/alpine'))).toBe(true);
  });

  it('warns about an unparsable DOCKER_AUTH_CONFIG instead of failing', () => {
    const c = pullAuthConfig(job({ variables: [{ key: 'DOCKER_AUTH_CONFIG', value: '{nope' }] }), []);
    expect(c.warnings).toEqual(['DOCKER_AUTH_CONFIG is not valid JSON; ignored']);
    expect(c.auths.size).toBe(0);
  });
});
