// `runners:`: more GitLab runners in one coordinator, each owning executors by name. The deployment's own
// runner (gitlab.token) keeps every executor no runner names; the contract config (no `runners:`) is one
// runner over every executor.
import { describe, expect, it } from 'vitest';

import { compileConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/core/errors.js';
import { testToken } from '../../helpers/tokens.js';

const TOKEN = testToken('glrt-');
const DEPLOY = testToken('glrt-');
const OTHER = testToken('glrt-');

const executors = ['dind', 'plain', 'deploy-dev', 'deploy-prod'].map((name) => ({ name, provider: 'local', maxMachines: 2 }));
const config = (runners: unknown, extra: Record<string, unknown> = {}) => ({
  gitlab: { url: 'https://gitlab.example.com', token: TOKEN, runner: { description: 'ci-fleet' } },
  concurrent: 4,
  executors,
  runners,
  ...extra,
});

function refusal(raw: unknown): ConfigError {
  try {
    compileConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('accepted');
}

describe('runners', () => {
  it('without runners: one runner, the deployment\'s, over every executor in order', () => {
    const c = compileConfig({ gitlab: { url: 'https://gitlab.example.com', token: TOKEN }, concurrent: 2, requestConcurrency: 2, executors });
    expect(c.runners).toEqual([{ name: 'default', description: 'fleetrunner', executors: ['dind', 'plain', 'deploy-dev', 'deploy-prod'], requestConcurrency: 2 }]);
  });

  it('a runner owns the executors it names; the deployment\'s runner keeps the rest', () => {
    const c = compileConfig(config([{ name: 'deploy', token: DEPLOY, executors: ['deploy-prod', 'deploy-dev'], description: 'deploys' }]));
    expect(c.runners).toEqual([
      { name: 'default', description: 'ci-fleet', executors: ['dind', 'plain'], requestConcurrency: 1 },
      { name: 'deploy', token: DEPLOY, description: 'deploys', executors: ['deploy-prod', 'deploy-dev'], requestConcurrency: 1 },
    ]);
  });

  it('leaves the deployment\'s runner out when the runners own every executor', () => {
    const c = compileConfig(config([
      { name: 'build', token: OTHER, executors: ['dind', 'plain'] },
      { name: 'deploy', token: DEPLOY, executors: ['deploy-dev', 'deploy-prod'], requestConcurrency: 2 },
    ]));
    expect(c.runners.map((r) => [r.name, r.description, r.requestConcurrency])).toEqual([
      ['build', 'build', 1],
      ['deploy', 'deploy', 2],
    ]);
  });

  it.each([
    [[{ name: 'd', token: DEPLOY, executors: ['nope'] }], 'runners[0].executors[0]', 'no executor named "nope"'],
    [[{ name: 'a', token: DEPLOY, executors: ['dind'] }, { name: 'b', token: OTHER, executors: ['plain', 'dind'] }], 'runners[1].executors[1]', 'already belongs to runner "a"'],
    [[{ name: 'default', token: DEPLOY, executors: ['dind'] }], 'runners[0].name', 'is the runner of gitlab.token'],
    [[{ name: 'a', token: DEPLOY, executors: ['dind'] }, { name: 'a', token: OTHER, executors: ['plain'] }], 'runners[1].name', 'duplicate runner name "a"'],
    [[{ name: 'a', token: TOKEN, executors: ['dind'] }], 'runners[0].token', 'the same token as gitlab.token'],
    [[{ name: 'a', token: DEPLOY, executors: [] }], 'runners[0].executors', 'at least one executor'],
    [[{ name: 'a', token: DEPLOY, executors: ['dind'], tags: ['x'] }], 'runners[0]', 'unknown key "tags"'],
  ])('refuses %j at %s', (runners, path, hint) => {
    const e = refusal(config(runners));
    expect(e.path).toBe(path);
    expect(e.message).toContain(hint);
    // The token is never part of the message.
    expect(e.message).not.toContain(DEPLOY);
  });

  it('refuses more job requests in flight than concurrent allows, naming each runner\'s share', () => {
    const e = refusal(config([{ name: 'deploy', token: DEPLOY, executors: ['deploy-dev'], requestConcurrency: 3 }], { requestConcurrency: 2 }));
    expect(e.path).toBe('runners');
    expect(e.message).toContain('default: 2, deploy: 3');
  });
});
