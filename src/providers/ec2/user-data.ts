// User data for an EC2 machine: the cloud-init template (templates/ec2-user-data.yaml, or the executor's own
// `ec2.userDataTemplate`) filled with this instance's keys. Rendering is a tiny, strict template language:
// `{{name}}` placeholders (multi-line values indented like their line) and `{{#install}}…{{/install}}`
// sections, dropped for baked AMIs. Unknown placeholders fail loudly, so a typo in a user's template is an
// error at start-up rather than a machine that never answers.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { PermanentError } from '../../core/errors.js';
import type { Ec2ProviderConfig } from '../../core/provider-config.js';
import { defaultKeyPairGenerator } from './machine-keys.js';

/** The package's template: three levels up from src/providers/ec2/ and from dist/providers/ec2/ alike. */
export const DEFAULT_USER_DATA_TEMPLATE = fileURLToPath(new URL('../../../templates/ec2-user-data.yaml', import.meta.url));

/** Where jobs live on an EC2 machine; the template creates both, owned by the SSH user. */
export const EC2_BUILDS_DIR = '/builds';
export const EC2_CACHE_DIR = '/cache';
/** ConnectionInfo.stateDir on an instance: fleetrunner's records, owned by the SSH user, mode 700. */
export const EC2_STATE_DIR = '/var/lib/fleetrunner';

/** AWS's limit on user data, counted before base64. */
export const USER_DATA_MAX_BYTES = 16 * 1024;

export interface UserDataKeys {
  /** "ssh-ed25519 AAAA…": goes to the SSH user's authorized_keys. */
  clientPublicKey: string;
  /** OpenSSH private key: becomes /etc/ssh/ssh_host_ed25519_key. */
  hostPrivateKey: string;
  hostPublicKey: string;
}

const REQUIRED = ['hostPrivateKey', 'hostPublicKey', 'clientPublicKey'] as const;
const SSH_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const ONE_LINE_KEY = /^ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+$/;

export function readUserDataTemplate(path: string = DEFAULT_USER_DATA_TEMPLATE): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new PermanentError(`cannot read the user data template ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Fills `template`; `sections` says which `{{#name}}` sections are kept. */
export function renderTemplate(template: string, values: Readonly<Record<string, string>>, sections: Readonly<Record<string, boolean>>): string {
  const out: string[] = [];
  const open: string[] = [];
  template.split('\n').forEach((line, i) => {
    const marker = /^\s*\{\{([#/])([A-Za-z]+)\}\}\s*$/.exec(line);
    if (marker) {
      const [, kind, name] = marker as unknown as [string, string, string];
      if (!(name in sections)) throw new PermanentError(`user data template line ${i + 1}: unknown section "${name}"`);
      if (kind === '#') open.push(name);
      else if (open.pop() !== name) throw new PermanentError(`user data template line ${i + 1}: "{{/${name}}}" closes nothing`);
      return;
    }
    if (!open.every((s) => sections[s])) return;
    const indent = /^\s*/.exec(line)![0];
    out.push(
      line.replace(/\{\{\s*([A-Za-z]+)\s*\}\}/g, (_, name: string) => {
        const v = values[name];
        if (v === undefined) throw new PermanentError(`user data template line ${i + 1}: unknown placeholder "{{${name}}}"`);
        return v.replace(/\n+$/, '').split('\n').join(`\n${indent}`);
      }),
    );
  });
  if (open.length) throw new PermanentError(`user data template: section "${open[open.length - 1]}" is never closed`);
  return out.join('\n');
}

/** Cloud-init user data for one instance of `executorName`. `template` defaults to the configured file. */
export function renderUserData(config: Ec2ProviderConfig, executorName: string, keys: UserDataKeys, template?: string): string {
  const text = template ?? readUserDataTemplate(config.userDataTemplate);
  for (const name of REQUIRED) {
    if (!new RegExp(`\\{\\{\\s*${name}\\s*\\}\\}`).test(text)) throw new PermanentError(`user data template must contain {{${name}}} (the connection is pinned to the keys it installs)`);
  }
  if (!SSH_USER.test(config.sshUser)) throw new PermanentError(`ec2.sshUser "${config.sshUser}" is not a valid Linux user name`);
  if (!ONE_LINE_KEY.test(keys.clientPublicKey) || !ONE_LINE_KEY.test(keys.hostPublicKey)) throw new PermanentError('public keys must be one-line OpenSSH keys');
  const rendered = renderTemplate(
    text,
    {
      executor: executorName.replace(/[^\w.-]/g, '_'),
      sshUser: config.sshUser,
      buildsDir: EC2_BUILDS_DIR,
      cacheDir: EC2_CACHE_DIR,
      stateDir: EC2_STATE_DIR,
      watchdogIdleTimeoutSeconds: String(Math.ceil(config.watchdog.idleTimeoutMs / 1000)),
      watchdogMaxLifetimeSeconds: String(Math.ceil(config.watchdog.maxLifetimeMs / 1000)),
      hostPrivateKey: keys.hostPrivateKey,
      hostPublicKey: keys.hostPublicKey,
      clientPublicKey: keys.clientPublicKey,
    },
    { install: !config.bakedAmi },
  );
  const bytes = Buffer.byteLength(rendered);
  if (bytes > USER_DATA_MAX_BYTES) throw new PermanentError(`user data is ${bytes} bytes; EC2 accepts at most ${USER_DATA_MAX_BYTES}`);
  return rendered;
}

/**
 * What `fleetrunner render-userdata --config F --executor NAME` prints: the user data an instance of that
 * executor gets, with throwaway keys generated for the printout (marked as examples).
 */
export function renderUserDataForCli(executor: { name: string; ec2: Ec2ProviderConfig }): string {
  const host = defaultKeyPairGenerator('EXAMPLE-host-key-generated-for-this-printout');
  const client = defaultKeyPairGenerator('EXAMPLE-client-key-generated-for-this-printout');
  const text = renderUserData(executor.ec2, executor.name, { clientPublicKey: client.public, hostPrivateKey: host.private, hostPublicKey: host.public });
  const [first, ...rest] = text.split('\n');
  const note = '# EXAMPLE: the SSH keys below were generated for this printout only; every instance gets fresh ones at launch.';
  return [first, note, ...rest].join('\n');
}
