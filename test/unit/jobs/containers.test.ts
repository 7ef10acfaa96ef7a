import { describe, expect, it } from 'vitest';

import { buildPlan, jobContainers, splitAliases } from '../../../src/jobs/index.js';
import { PORTABLE_PIPEFAIL } from '../../../src/jobs/writer.js';
import { jobImage } from '../../helpers/job-payload.js';
import { body, ctx, job } from './fixtures.js';

describe('jobContainers', () => {
  it('expands image and service names and aliases against the job variables', () => {
    const c = jobContainers(
      job({
        variables: [
          { key: 'REG', value: 'registry.example.com', public: true },
          { key: 'TAG', value: '27', public: true },
        ],
        image: jobImage({ name: '$REG/tools/cli:${TAG}', entrypoint: [''], pull_policy: ['if-not-present'] }),
        services: [
          jobImage({ name: 'docker:${TAG}-dind', alias: 'docker, dind-$TAG', command: ['--tls=false'], variables: [{ key: 'DOCKER_TLS_CERTDIR', value: '' }] }),
        ],
      }),
      ctx(),
    );
    expect(c.image).toEqual({ name: 'registry.example.com/tools/cli:27', aliases: [], entrypoint: [''], pullPolicies: ['if-not-present'], variables: [] });
    expect(c.services).toEqual([
      { name: 'docker:27-dind', aliases: ['docker', 'dind-27'], command: ['--tls=false'], variables: [{ key: 'DOCKER_TLS_CERTDIR', value: '' }] },
    ]);
  });

  it('expands a service variable against the job variables and keeps executor options', () => {
    const c = jobContainers(
      job({
        variables: [{ key: 'DB', value: 'app', public: true }],
        services: [jobImage({ name: 'postgres:16', variables: [{ key: 'POSTGRES_DB', value: '${DB}_test' }], executor_opts: { docker: { platform: 'linux/amd64', user: '999' } } })],
      }),
      ctx(),
    );
    expect(c.services[0]).toMatchObject({ variables: [{ key: 'POSTGRES_DB', value: 'app_test' }], platform: 'linux/amd64', user: '999' });
  });

  it('gives containers the public and runner variables only: no masked, protected or file values', () => {
    const c = jobContainers(
      job({
        variables: [
          { key: 'CI_JOB_TOKEN', value: 'tok', masked: true, public: false },
          { key: 'PROJECT_SECRET', value: 'hidden', public: false },
          { key: 'DOCKER_TLS_CERTDIR', value: '/certs', public: true },
          { key: 'KUBECONFIG', value: 'apiVersion: v1', file: true, public: true },
          { key: 'OVERRIDDEN', value: 'public-first', public: true },
          { key: 'OVERRIDDEN', value: 'secret-last', public: false },
        ],
      }),
      ctx(),
    );
    const env = new Map(c.environment.map((e) => [e.key, e.value]));
    expect(env.get('DOCKER_TLS_CERTDIR')).toBe('/certs');
    expect(env.get('CI_PROJECT_DIR')).toBe('/home/fr/builds/group/sub/app');
    expect(env.get('CI_JOB_STATUS')).toBe('running');
    for (const k of ['CI_JOB_TOKEN', 'PROJECT_SECRET', 'KUBECONFIG', 'OVERRIDDEN']) expect(env.has(k)).toBe(false);
    expect(c.image).toBeUndefined();
  });

  it.each([
    ['a, b c', ['a', 'b', 'c']],
    ['  single ', ['single']],
    ['', []],
    [undefined, []],
  ])('splits alias %j', (alias, expected) => {
    expect(splitAliases(alias)).toEqual(expected);
  });
});

describe('portable user stages', () => {
  it('user and after_script stages turn pipefail on only where the shell has it; predefined stages keep bash', () => {
    const plan = buildPlan(job(), ctx());
    const user = body(plan.user[0]!.script);
    expect(user.startsWith(`(\nset -e\n${PORTABLE_PIPEFAIL}\n`)).toBe(true);
    expect(body(plan.after!('failed').script)).toContain(PORTABLE_PIPEFAIL);
    expect(body(plan.prepare[1]!.script).startsWith('(\nset -eo pipefail\n')).toBe(true);
  });
});
