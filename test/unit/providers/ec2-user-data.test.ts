// The user data's text, rendered from templates/ec2-user-data.yaml for a privileged DinD executor. That it
// boots (cloud-init accepts it, the pinned host key, Docker, privileged DinD) is shown by
// test/e2e/dind-vm.e2e.test.ts, which boots exactly this rendering in a VM.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { parseConfigText, type Ec2ProviderConfig } from '../../../src/config/index.js';
import { PermanentError } from '../../../src/core/index.js';
import { renderTemplate, renderUserData, renderUserDataForCli, USER_DATA_MAX_BYTES } from '../../../src/providers/ec2/user-data.js';
import { generateEd25519 } from '../../../src/providers/ssh-keys.js';
import { testToken } from '../../helpers/tokens.js';

const RUNNER_TOKEN = testToken('glrt-');

const CONFIG_TEXT = `gitlab: { url: https://gitlab.example.com, token: ${RUNNER_TOKEN} }
concurrent: 2
executors:
  - name: local
    provider: local
    maxMachines: 1
  - name: dind
    provider: ec2
    style: docker
    privileged: true
    maxMachines: 10
    ec2:
      subnets: [subnet-0aaa1111]
      instanceTypes: [c6i.xlarge]
`;
const fleetConfig = parseConfigText(CONFIG_TEXT);
const ec2 = fleetConfig.executors[1]!.ec2!;
const host = generateEd25519('host');
const client = generateEd25519('client');
const keys = { clientPublicKey: client.public, hostPrivateKey: host.private, hostPublicKey: host.public };

const dir = mkdtempSync(join(tmpdir(), 'fr-userdata-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('renderTemplate', () => {
  it('indents multi-line values like the line they sit on', () => {
    expect(renderTemplate('a: |\n  {{v}}\nb: {{w}}', { v: 'one\ntwo\n', w: 'x' }, {})).toBe('a: |\n  one\n  two\nb: x');
  });

  it('keeps or drops sections', () => {
    const t = 'start\n  {{#install}}\n  dnf install\n  {{/install}}\nend';
    expect(renderTemplate(t, {}, { install: true })).toBe('start\n  dnf install\nend');
    expect(renderTemplate(t, {}, { install: false })).toBe('start\nend');
  });

  it.each([
    ['an unknown placeholder', 'x: {{nope}}', /line 1: unknown placeholder "\{\{nope\}\}"/],
    ['an unknown section', '{{#other}}\n{{/other}}', /unknown section "other"/],
    ['an unclosed section', '{{#install}}\nx', /section "install" is never closed/],
    ['a stray closing marker', '{{/install}}', /closes nothing/],
  ])('rejects %s', (_, t, msg) => {
    expect(() => renderTemplate(t, {}, { install: true })).toThrow(msg);
  });
});

describe('renderUserData', () => {
  it('renders valid cloud-config with the keys in place', () => {
    const text = renderUserData(ec2, 'dind', keys);
    const doc = parseYaml(text) as Record<string, unknown> & { ssh_keys: Record<string, string>; runcmd: unknown };
    expect(text.split('\n')[0]).toBe('#cloud-config');
    expect(doc.ssh_genkeytypes).toEqual(['ed25519']);
    expect(doc.ssh_keys.ed25519_private!.trim()).toBe(host.private.trim());
    expect(doc.ssh_keys.ed25519_public).toBe(host.public);
    expect(doc.runcmd).toEqual([['systemctl', 'enable', '--now', 'fleetrunner-agent.service'], ['/usr/local/sbin/fleetrunner-bootstrap']]);
    expect(text).toContain(client.public);
    expect(text).toContain("user='ec2-user'");
    expect(text).toMatch(/install -d -m 755 .* '\/builds' '\/cache'/);
    expect(text).not.toContain('glrt-');
  });

  it('reads a template of the executor\'s own, and insists on the key placeholders', () => {
    const own = join(dir, 'own.yaml');
    writeFileSync(own, '#cloud-config\n# {{executor}}\nssh_keys:\n  ed25519_private: |\n    {{hostPrivateKey}}\n  ed25519_public: {{ hostPublicKey }}\n# {{clientPublicKey}}\n');
    expect(renderUserData({ ...ec2, userDataTemplate: own }, 'dind', keys)).toContain('# dind');
    writeFileSync(own, '#cloud-config\n# {{hostPublicKey}} {{clientPublicKey}}\n');
    expect(() => renderUserData({ ...ec2, userDataTemplate: own }, 'dind', keys)).toThrow(/must contain \{\{hostPrivateKey\}\}/);
    expect(() => renderUserData({ ...ec2, userDataTemplate: join(dir, 'missing.yaml') }, 'dind', keys)).toThrow(PermanentError);
  });

  it('refuses an SSH user that is not a plain Linux user name (it goes into a shell script)', () => {
    expect(() => renderUserData({ ...ec2, sshUser: "x'; rm -rf /" } as Ec2ProviderConfig, 'dind', keys)).toThrow(/not a valid Linux user name/);
  });

  it('refuses user data over EC2\'s 16 KiB limit', () => {
    const big = `#cloud-config\n# ${'x'.repeat(USER_DATA_MAX_BYTES)}\n{{hostPrivateKey}}\n{{hostPublicKey}}\n{{clientPublicKey}}\n`;
    expect(() => renderUserData(ec2, 'dind', keys, big)).toThrow(/EC2 accepts at most 16384/);
  });
});

describe('renderUserDataForCli', () => {
  it('prints the user data with throwaway keys marked as examples', () => {
    const dind = { name: 'dind', ec2: fleetConfig.executors.find((e) => e.name === 'dind')!.ec2! };
    const text = renderUserDataForCli(dind);
    const lines = text.split('\n');
    expect(lines[0]).toBe('#cloud-config');
    expect(lines[1]).toMatch(/^# EXAMPLE: the SSH keys below were generated for this printout only/);
    expect(parseYaml(text)).toHaveProperty('ssh_keys.ed25519_public', expect.stringMatching(/^ssh-ed25519 /));
    expect(renderUserDataForCli(dind)).not.toBe(text); // fresh keys every time
  });
});
