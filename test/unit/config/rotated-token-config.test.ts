// `gitlab.rotatedToken`: an SSM parameter name as Parameter Store accepts it, named by its key path when not.
import { describe, expect, it } from 'vitest';

import { compileConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/core/errors.js';
import { testToken } from '../../helpers/tokens.js';

const TOKEN = testToken('glrt-');

const config = (rotatedToken: Record<string, unknown>) => ({
  gitlab: { url: 'https://gitlab.example.com', token: TOKEN, rotatedToken },
  concurrent: 2,
  executors: [{ name: 'local', provider: 'local', maxMachines: 2 }],
});

describe('gitlab.rotatedToken', () => {
  it('takes a parameter path, a region and a KMS key', () => {
    const c = compileConfig(config({ ssmParameter: '/fleetrunner/prod/runner-token', region: 'eu-west-1', kmsKeyId: 'alias/fleetrunner' }));
    expect(c.gitlab.rotatedToken).toEqual({ ssmParameter: '/fleetrunner/prod/runner-token', region: 'eu-west-1', kmsKeyId: 'alias/fleetrunner' });
    expect(compileConfig({ ...config({}), gitlab: { url: 'https://gitlab.example.com', token: TOKEN } }).gitlab.rotatedToken).toBeUndefined();
  });

  it.each([
    ['fleetrunner/prod', 'a path starting with /'],
    ['/aws/reserved', 'not under /aws or /ssm'],
    ['/SSM/reserved', 'not under /aws or /ssm'],
    ['/has space', 'a path starting with /'],
  ])('refuses %s naming the key', (name, hint) => {
    let err: unknown;
    try {
      compileConfig(config({ ssmParameter: name }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).path).toBe('gitlab.rotatedToken.ssmParameter');
    expect((err as Error).message).toContain(hint);
  });

  it('refuses a key it does not know', () => {
    expect(() => compileConfig(config({ ssmParameter: '/x', secret: 'y' }))).toThrow(/gitlab\.rotatedToken/);
  });
});
