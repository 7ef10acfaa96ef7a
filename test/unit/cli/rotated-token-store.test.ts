// Where a rotated runner token is kept: the deployment's runner at the configured place, each runner of
// `runners:` beside it under its own name, so two runners never overwrite each other's token.
import { describe, expect, it } from 'vitest';
import { rotatedTokenSecretStore } from '../../../src/cli/rotated-token.js';
import { compileConfig } from '../../../src/config/index.js';
import { testToken } from '../../helpers/tokens.js';

const raw = (gitlab: Record<string, unknown> = {}) => ({
  gitlab: { url: 'https://gitlab.example.com', token: testToken('glrt-'), ...gitlab },
  concurrent: 2,
  executors: [{ name: 'a', provider: 'local', maxMachines: 1 }, { name: 'b', provider: 'local', maxMachines: 1 }],
  runners: [{ name: 'deploy', token: testToken('glrt-'), executors: ['b'] }],
});

describe('rotated token stores per runner', () => {
  it('files: runner-token.json for the deployment, runner-token-<name>.json for a runner of runners:', () => {
    const config = compileConfig(raw());
    expect(rotatedTokenSecretStore(config, '/state').where).toBe('file:/state/runner-token.json');
    expect(rotatedTokenSecretStore(config, '/state', {}, 'deploy').where).toBe('file:/state/runner-token-deploy.json');
  });

  it('SSM: the configured parameter, and <parameter>-<name> for a runner of runners:', () => {
    const config = compileConfig(raw({ rotatedToken: { ssmParameter: '/fleetrunner/prod/runner-token', region: 'eu-west-1' } }));
    expect(rotatedTokenSecretStore(config, '/state', {}).where).toBe('ssm:/fleetrunner/prod/runner-token');
    expect(rotatedTokenSecretStore(config, '/state', {}, 'deploy').where).toBe('ssm:/fleetrunner/prod/runner-token-deploy');
  });
});
