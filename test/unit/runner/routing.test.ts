import { describe, expect, it } from 'vitest';
import { compileConfig, type RoutingRules } from '../../../src/config/index.js';
import { testToken } from '../../helpers/tokens.js';
import { route } from '../../../src/runner/routing.js';
import { jobPayload } from '../../helpers/job-payload.js';

const executors: Array<{ name: string; match?: RoutingRules }> = [
  { name: 'dind', match: { services: ['docker:', 'registry.example.com/mirror/docker:'] } },
  { name: 'builder', match: { images: ['registry.example.com/group/app/builder'] } },
  { name: 'prod', match: { variables: { DEPLOY_ENV: 'prod' } } },
  { name: 'default' },
];

const vars = [
  { key: 'CI_REGISTRY_IMAGE', value: 'registry.example.com/group/app', public: true, masked: false },
  { key: 'DOCKER_VERSION', value: '27', public: true, masked: false },
  { key: 'MIRROR', value: 'registry.example.com/mirror', public: true, masked: false },
];

// Payloads as Rails renders them (nulls where unset) → the executor that takes them.
const table: Array<[string, Record<string, unknown>, string]> = [
  ['no image, no services (Rails: image null, services [])', { image: null, services: [] }, 'default'],
  ['services null', { image: null, services: null }, 'default'],
  ['a dind service by its plain name', { services: [{ name: 'docker:27-dind', alias: null, entrypoint: null, command: null, ports: [], variables: [] }] }, 'dind'],
  ['a dind service whose name is a variable', { services: [{ name: '$MIRROR/docker:${DOCKER_VERSION}-dind', alias: null, variables: [] }] }, 'dind'],
  ['an image named by $CI_REGISTRY_IMAGE', { image: { name: '$CI_REGISTRY_IMAGE/builder:1', entrypoint: null, ports: [], executor_opts: {}, pull_policy: null } }, 'builder'],
  ['an image whose variable is undefined expands to a name no rule has', { image: { name: '$UNDEFINED_REGISTRY/builder:1' } }, 'default'],
  ['a variable rule', { variables: [...vars, { key: 'DEPLOY_ENV', value: 'prod', public: true, masked: false }] }, 'prod'],
  ['a variable rule against a null value', { variables: [...vars, { key: 'DEPLOY_ENV', value: null, public: true, masked: false }] }, 'default'],
];

describe('routing on expanded names', () => {
  it.each(table)('%s', (_name, body, expected) => {
    const job = jobPayload({ variables: vars, ...body });
    expect(route(executors, job)?.name).toBe(expected);
  });

  it('the contract config (one executor without rules) takes every job', () => {
    for (const [, body] of table) expect(route([{ name: 'local' }], jobPayload({ variables: vars, ...body }))?.name).toBe('local');
  });
});

// Several runners (config `runners:`): GitLab picks the runner by the job's tags; the job is then routed
// among that runner's executors only. The compiled config decides which executors those are.
describe('routing with several runners', () => {
  const config = compileConfig({
    gitlab: { url: 'https://gitlab.example.com', token: testToken('glrt-') },
    concurrent: 8,
    executors: [
      { name: 'dind', provider: 'local', maxMachines: 2, match: { services: ['docker:'] } },
      { name: 'plain', provider: 'local', maxMachines: 2 },
      { name: 'deploy-prod', provider: 'local', maxMachines: 1, match: { variables: { DEPLOY_ENV: 'prod' } } },
      { name: 'deploy-dev', provider: 'local', maxMachines: 1 },
    ],
    runners: [{ name: 'deploy', token: testToken('glrt-'), executors: ['deploy-prod', 'deploy-dev'] }],
  });
  const executorsOf = (runner: string) => config.runners.find((r) => r.name === runner)!.executors.map((name) => config.executors.find((e) => e.name === name)!);
  const dindService = { services: [{ name: 'docker:27-dind', alias: null, entrypoint: null, command: null, ports: [], variables: [] }] };
  const prod = { variables: [...vars, { key: 'DEPLOY_ENV', value: 'prod', public: true, masked: false }] };

  const table: Array<[string, string, Record<string, unknown>, string]> = [
    ['an untagged build with docker:dind', 'default', dindService, 'dind'],
    ['an untagged plain job', 'default', { image: null, services: [] }, 'plain'],
    ['an untagged job with DEPLOY_ENV=prod stays on its runner', 'default', prod, 'plain'],
    ['a deploy job for prod', 'deploy', prod, 'deploy-prod'],
    ['a deploy job for dev (DEPLOY_ENV null)', 'deploy', { variables: [...vars, { key: 'DEPLOY_ENV', value: null, public: true, masked: false }] }, 'deploy-dev'],
    ['a deploy job with a dind service never reaches the dind executor', 'deploy', dindService, 'deploy-dev'],
  ];
  it.each(table)('%s → runner %s', (_name, runner, body, expected) => {
    expect(route(executorsOf(runner), jobPayload({ variables: vars, ...body }))?.name).toBe(expected);
  });

  it('the contract config is one runner, `default`, over its one executor', () => {
    const contract = compileConfig({ gitlab: { url: 'https://gitlab.example.com', token: testToken('glrt-') }, concurrent: 4, executors: [{ name: 'local', provider: 'local', maxMachines: 4 }] });
    expect(contract.runners.map((r) => [r.name, r.executors])).toEqual([['default', ['local']]]);
  });
});
