import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSource, describeSource, readConfigSource } from '../../../src/cli/config-source.js';
import { redactedConfig, renderConfig } from '../../../src/cli/render-config.js';
import { parseConfigText } from '../../../src/config/index.js';
import { SsmSecretStore } from '../../../src/providers/aws/ssm-secret-store.js';
import { FakeSsm } from '../../helpers/fake-ssm.js';

const dir = mkdtempSync(join(tmpdir(), 'fr-cfgsrc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const token = () => `glrt-${randomBytes(12).toString('hex')}`;
const yaml = (t = '${RUNNER_TOKEN}') => `gitlab:\n  url: https://gitlab.example.com\n  token: ${t}\nconcurrent: 2\nexecutors:\n  - name: local\n    provider: local\n    maxMachines: 2\n`;
const noSsm = { ssmParameter: async () => { throw new Error('not used'); } };

describe('where the configuration comes from', () => {
  it('--config wins over the environment; otherwise exactly one variable names it', () => {
    expect(configSource('a.yaml', { FLEETRUNNER_CONFIG_YAML: 'x' })).toEqual({ kind: 'file', path: 'a.yaml' });
    expect(configSource(undefined, { FLEETRUNNER_CONFIG: 'b.yaml' })).toEqual({ kind: 'file', path: 'b.yaml' });
    expect(configSource(undefined, { FLEETRUNNER_CONFIG_YAML: 'x: 1' })).toEqual({ kind: 'env', variable: 'FLEETRUNNER_CONFIG_YAML', text: 'x: 1' });
    expect(configSource(undefined, { FLEETRUNNER_CONFIG_SSM_PARAMETER: '/fr/config', FLEETRUNNER_CONFIG: '' })).toEqual({ kind: 'ssm', parameter: '/fr/config' });
    expect(configSource(undefined, { FLEETRUNNER_CONFIG: 'b.yaml', FLEETRUNNER_CONFIG_SSM_PARAMETER: '/fr/config' })).toEqual({
      error: 'the configuration is named twice: FLEETRUNNER_CONFIG and FLEETRUNNER_CONFIG_SSM_PARAMETER are both set (set one, or pass --config FILE)',
    });
    expect(configSource(undefined, {})).toEqual({ error: expect.stringMatching(/^--config FILE is required \(or one of FLEETRUNNER_CONFIG=FILE, FLEETRUNNER_CONFIG_YAML=YAML, FLEETRUNNER_CONFIG_SSM_PARAMETER=NAME\)$/) });
    expect(describeSource({ kind: 'file', path: 'a.yaml' })).toBe('a.yaml');
    expect(describeSource({ kind: 'env', variable: 'FLEETRUNNER_CONFIG_YAML', text: 'x: 1' })).toBe('$FLEETRUNNER_CONFIG_YAML');
    expect(describeSource({ kind: 'ssm', parameter: '/fr/config' })).toBe('ssm:/fr/config');
  });

  it('reads a file, the variable, or an SSM SecureString through the SDK', async () => {
    const path = join(dir, 'f.yaml');
    writeFileSync(path, yaml());
    expect(await readConfigSource({ kind: 'file', path }, noSsm)).toBe(yaml());
    expect(await readConfigSource({ kind: 'env', variable: 'FLEETRUNNER_CONFIG_YAML', text: yaml() }, noSsm)).toBe(yaml());
    const ssm = new FakeSsm();
    await ssm.client.send(new PutParameterCommand({ Name: '/fleetrunner/prod/config', Value: yaml(), Type: 'SecureString' }));
    const viaSdk = { ssmParameter: (name: string) => new SsmSecretStore({ client: ssm.client, name }).get() };
    const text = await readConfigSource({ kind: 'ssm', parameter: '/fleetrunner/prod/config' }, viaSdk);
    expect(parseConfigText(text, { RUNNER_TOKEN: token() }).concurrent).toBe(2);
  });

  it('says which source failed and why', async () => {
    await expect(readConfigSource({ kind: 'file', path: join(dir, 'nope.yaml') }, noSsm)).rejects.toThrow(`cannot read config ${join(dir, 'nope.yaml')}: ENOENT`);
    const ssm = new FakeSsm();
    const viaSdk = { ssmParameter: (name: string) => new SsmSecretStore({ client: ssm.client, name }).get() };
    await expect(readConfigSource({ kind: 'ssm', parameter: '/fleetrunner/none' }, viaSdk)).rejects.toThrow('cannot read config from SSM parameter /fleetrunner/none: it does not exist (FLEETRUNNER_CONFIG_SSM_PARAMETER)');
    ssm.deny('GetParameter');
    await expect(readConfigSource({ kind: 'ssm', parameter: '/fleetrunner/none' }, viaSdk)).rejects.toThrow(/^cannot read config from SSM parameter \/fleetrunner\/none: AccessDeniedException: /);
  });
});

describe('render-config', () => {
  it('prints the effective configuration with the runner token and token-shaped values masked', () => {
    const secret = token();
    const pat = `glpat-${randomBytes(10).toString('hex')}`;
    const config = parseConfigText(yaml().replace('    maxMachines: 2\n', `    maxMachines: 2\n    environment: { DEPLOY_TOKEN: ${pat}, STAGE: prod }\n`), { RUNNER_TOKEN: secret });
    const text = renderConfig(config, '$FLEETRUNNER_CONFIG_YAML');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(pat);
    expect(text.split('\n')[0]).toBe('# fleetrunner: effective configuration from $FLEETRUNNER_CONFIG_YAML');
    const shown = parse(text) as { gitlab: { token: string; url: string }; checkIntervalMs: number; executors: Array<{ environment: Record<string, string> }> };
    expect(shown.gitlab).toMatchObject({ token: '[MASKED]', url: 'https://gitlab.example.com' });
    expect(shown.checkIntervalMs).toBe(3_000); // the default, normalised
    expect(shown.executors[0]!.environment).toEqual({ DEPLOY_TOKEN: '[MASKED]', STAGE: 'prod' });
  });

  it('masks the token of every runner of `runners:`, whatever its shape', () => {
    const config = parseConfigText(`${yaml()}runners:\n  - name: deploy\n    token: \${DEPLOY_TOKEN}\n    executors: [local]\n`, { RUNNER_TOKEN: token(), DEPLOY_TOKEN: 'short-legacy-token' });
    const text = renderConfig(config, 'fleetrunner.yaml');
    expect(text).not.toContain('short-legacy-token');
    expect((parse(text) as { runners: Array<{ name: string; token: string }> }).runners).toEqual([expect.objectContaining({ name: 'deploy', token: '[MASKED]' })]);
  });

  it('masks a legacy registration token whatever its shape', () => {
    const config = parseConfigText(yaml().replace('  token: ${RUNNER_TOKEN}', '  registrationToken: abc'), {});
    expect((redactedConfig(config).gitlab as Record<string, unknown>).registrationToken).toBe('[MASKED]');
  });
});
