// Where the configuration comes from. A file (`--config FILE`, or FLEETRUNNER_CONFIG naming one), the YAML
// itself in FLEETRUNNER_CONFIG_YAML (what the CloudFormation stack writes into the task definition), or an
// SSM parameter named in FLEETRUNNER_CONFIG_SSM_PARAMETER (a String or SecureString holding the YAML, read
// at start with the task role). `--config` wins over the environment; of the three variables at most one
// may be set, so a task never runs on a config other than the one its operator thinks it runs on.
//
// Why SSM Parameter Store and not also Secrets Manager: a SecureString is encrypted with KMS like a secret,
// the coordinator already reads SSM (the AMI, the rotated token), and the runner token, the one real
// secret, need not be in the YAML at all: `${RUNNER_TOKEN}` with the token injected by ECS from Secrets
// Manager (cloudformation/template.yaml).

import { readFile } from 'node:fs/promises';

export type ConfigSource =
  | { kind: 'file'; path: string }
  | { kind: 'env'; variable: typeof ENV_YAML; text: string }
  | { kind: 'ssm'; parameter: string };

export const ENV_FILE = 'FLEETRUNNER_CONFIG';
export const ENV_YAML = 'FLEETRUNNER_CONFIG_YAML';
export const ENV_SSM = 'FLEETRUNNER_CONFIG_SSM_PARAMETER';

/** The source, or why there is none (a usage error: exit 2). */
export function configSource(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): ConfigSource | { error: string } {
  if (flag !== undefined) return { kind: 'file', path: flag };
  const set = [ENV_FILE, ENV_YAML, ENV_SSM].filter((v) => (env[v] ?? '') !== '');
  if (set.length > 1) return { error: `the configuration is named twice: ${set.join(' and ')} are both set (set one, or pass --config FILE)` };
  if (env[ENV_FILE]) return { kind: 'file', path: env[ENV_FILE] };
  if (env[ENV_YAML]) return { kind: 'env', variable: ENV_YAML, text: env[ENV_YAML] };
  if (env[ENV_SSM]) return { kind: 'ssm', parameter: env[ENV_SSM] };
  return { error: `--config FILE is required (or one of ${ENV_FILE}=FILE, ${ENV_YAML}=YAML, ${ENV_SSM}=NAME)` };
}

/** How the source is named in messages and in the start-up log line. */
export function describeSource(s: ConfigSource): string {
  switch (s.kind) {
    case 'file':
      return s.path;
    case 'env':
      return `$${s.variable}`;
    case 'ssm':
      return `ssm:${s.parameter}`;
  }
}

export interface ReadSourceDeps {
  /** The value of an SSM parameter (decrypted), undefined when it does not exist. */
  ssmParameter: (name: string) => Promise<string | undefined>;
}

/** The YAML text of the source; the error says which source could not be read and why. */
export async function readConfigSource(s: ConfigSource, deps: ReadSourceDeps): Promise<string> {
  switch (s.kind) {
    case 'file':
      try {
        return await readFile(s.path, 'utf8');
      } catch (e) {
        throw new Error(`cannot read config ${s.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    case 'env':
      return s.text;
    case 'ssm': {
      let value: string | undefined;
      try {
        value = await deps.ssmParameter(s.parameter);
      } catch (e) {
        const err = e as { name?: string; message?: string };
        throw new Error(`cannot read config from SSM parameter ${s.parameter}: ${err.name ?? 'Error'}: ${err.message ?? String(e)}`);
      }
      if (value === undefined) throw new Error(`cannot read config from SSM parameter ${s.parameter}: it does not exist (${ENV_SSM})`);
      return value;
    }
  }
}

/** Reads SSM parameters with the SDK's standard chain (region, credentials, AWS_ENDPOINT_URL_SSM). */
export async function ssmParameterReader(): Promise<ReadSourceDeps['ssmParameter']> {
  const [{ createSsmClient }, { SsmSecretStore }] = await Promise.all([import('../providers/aws/clients.js'), import('../providers/aws/ssm-secret-store.js')]);
  const client = createSsmClient();
  return (name) => new SsmSecretStore({ client, name }).get();
}
