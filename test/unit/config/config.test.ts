import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/index.js';
import { parseDuration, parseSize } from '../../../src/config/units.js';

/** The contract config of docs/architecture.md; its placeholder token is built here, not stored as a literal. */
const PLACEHOLDER = `glrt-${'x'.repeat(20)}`;

const contract = `# fleetrunner.yaml — the smallest working configuration
gitlab:
  url: http://127.0.0.1:8080
  token: ${PLACEHOLDER}   # runner authentication token
concurrent: 4
executors:
  - name: local
    provider: local                  # machines are sshd processes on this host
    style: shell
    maxMachines: 4
`;

function errorOf(text: string, env: Record<string, string> = {}): string {
  try {
    parseConfigText(text, env);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('config', () => {
  it('accepts the contract config as written, with defaults', () => {
    const c = parseConfigText(contract);
    expect(c.gitlab.url).toBe('http://127.0.0.1:8080');
    expect(c.gitlab.machineUrl).toBe('http://127.0.0.1:8080');
    expect(c.concurrent).toBe(4);
    expect(c.checkIntervalMs).toBe(3000);
    expect(c.outputLimitBytes).toBe(4 * 1024 * 1024);
    expect(c.executors[0]).toMatchObject({ name: 'local', provider: 'local', style: 'shell', maxMachines: 4, bootTimeoutMs: 120_000 });
    expect(Object.isFrozen(c.executors[0])).toBe(true);
  });

  it('names the key path of a wrong type', () => {
    expect(errorOf(contract.replace('maxMachines: 4', 'maxMachines: four'))).toMatch(/^executors\[0\]\.maxMachines: .*number/);
  });

  it('names a missing required key', () => {
    expect(errorOf(contract.replace('concurrent: 4\n', ''))).toMatch(/^concurrent: is required/);
  });

  it('rejects unknown keys so typos do not pass silently', () => {
    expect(errorOf(contract.replace('style: shell', 'style: shell\n    colour: red'))).toBe('executors[0]: unknown key "colour"');
  });

  it('rejects a non-http GitLab URL', () => {
    expect(errorOf(contract.replace('http://127.0.0.1:8080', 'ftp://x'))).toMatch(/^gitlab\.url: expected an http\(s\) URL/);
  });

  it('reports YAML syntax errors with a position', () => {
    expect(errorOf('gitlab: [\n')).toMatch(/not valid YAML \(line \d+, column \d+\)/);
  });

  it('interpolates ${ENV} and names the key path when the variable is missing', () => {
    const text = contract.replace(PLACEHOLDER, '${RUNNER_TOKEN}');
    expect(parseConfigText(text, { RUNNER_TOKEN: 'glrt-from-env' }).gitlab.token).toBe('glrt-from-env');
    expect(errorOf(text)).toBe('gitlab.token: environment variable RUNNER_TOKEN is not set (referenced as ${RUNNER_TOKEN})');
    expect(parseConfigText(contract.replace(PLACEHOLDER, () => '$${LITERAL}')).gitlab.token).toBe('${LITERAL}');
  });

  it('normalises durations and sizes', () => {
    const c = parseConfigText(`${contract}checkInterval: 1500ms\nshutdownTimeout: 1h30m\noutputLimit: 512KiB\n`);
    expect(c.checkIntervalMs).toBe(1500);
    expect(c.shutdownTimeoutMs).toBe(5_400_000);
    expect(c.outputLimitBytes).toBe(524_288);
    expect(errorOf(`${contract}checkInterval: soon\n`)).toMatch(/^checkInterval: expected a duration/);
  });

  it('requires exactly one of token and registrationToken', () => {
    expect(errorOf(contract.replace('token: glrt-', 'registrationToken: x\n  token: glrt-'))).toMatch(/^gitlab\.token: set exactly one/);
  });

  it('rejects duplicate executor names', () => {
    const two = `${contract}  - name: local\n    provider: local\n    maxMachines: 1\n`;
    expect(errorOf(two)).toBe('executors[1].name: duplicate executor name "local"');
  });

  it.each([
    ['30s', 30_000], ['5m', 300_000], ['1h30m', 5_400_000], ['250ms', 250], ['1.5s', 1500], ['2d', 172_800_000],
  ])('parses duration %s', (input, ms) => expect(parseDuration(input)).toBe(ms));
  // A bare number is no duration (seconds? milliseconds?): compile.ts asks for the unit (limits.test.ts).
  it.each(['', 'm', '5 x', '-1s', '1h30', '10', 2, 0])('refuses duration %j', (input) => expect(parseDuration(input)).toBeUndefined());
  it.each([['4MiB', 4194304], ['1kb', 1000], ['100B', 100], ['2G', 2 ** 31]])('parses size %s', (i, b) => expect(parseSize(i)).toBe(b));
  it.each(['100', 100, '4 parsecs', 'MiB'])('refuses size %j', (input) => expect(parseSize(input)).toBeUndefined());

  describe('ec2 executors (issue example)', () => {
    const ec2 = `gitlab:
  url: https://gitlab.example.com
  token: ${PLACEHOLDER}
concurrent: 10
executors:
  - name: dind
    provider: ec2
    style: docker
    privileged: true
    maxMachines: 10
    ec2:
      region: eu-west-1
      subnets: [subnet-0aaa1111, subnet-0bbb2222]
      securityGroups: [sg-0ccc3333]
      instanceTypes: [c6i.xlarge, m6i.xlarge]
      iamInstanceProfile: fleetrunner-executor
      spot: true
`;
    it('validates as written, with defaults', () => {
      const e = parseConfigText(ec2).executors[0]!;
      expect(e).toMatchObject({ provider: 'ec2', style: 'docker', privileged: true, maxMachines: 10 });
      expect(e.ec2).toMatchObject({
        region: 'eu-west-1', subnets: ['subnet-0aaa1111', 'subnet-0bbb2222'], instanceTypes: ['c6i.xlarge', 'm6i.xlarge'], spot: true, onDemandFallback: true,
        amiParameter: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64', connectVia: 'private', associatePublicIp: false,
        rootVolume: { sizeGb: 30, type: 'gp3', encrypted: true },
      });
      expect(e.docker).toMatchObject({ defaultImage: 'alpine:latest', pullPolicy: 'always', servicesPrivileged: true });
    });
    it('names the key of a malformed subnet id', () => {
      expect(errorOf(ec2.replace('subnet-0bbb2222', 'sub-2'))).toMatch(/^executors\[0\]\.ec2\.subnets\[1\]: expected a subnet id/);
    });
    it('requires the ec2 block for provider ec2', () => {
      expect(errorOf(ec2.split('    ec2:')[0]!)).toBe('executors[0].ec2: is required for provider: ec2 (subnets, instanceTypes, …)');
    });
    it('refuses connectVia public without a public IP', () => {
      expect(errorOf(`${ec2}      connectVia: public\n`)).toMatch(/^executors\[0\]\.ec2\.connectVia: public needs ec2\.associatePublicIp/);
    });
    it('refuses privileged on a shell executor', () => {
      expect(errorOf(`${contract}    privileged: true\n`)).toMatch(/^executors\[0\]\.privileged: applies only to style: docker/);
    });
    it('accepts an S3 cache and ECR registries, and checks their form', () => {
      const withCache = `${ec2}    cache:\n      s3: { bucket: my-ci-cache, prefix: runners/ }\n    ecr:\n      pushRegistries: [123456789012.dkr.ecr.eu-west-1.amazonaws.com]\n`;
      const e = parseConfigText(withCache).executors[0]!;
      expect(e.cache?.s3).toMatchObject({ bucket: 'my-ci-cache', prefix: 'runners/', urlExpiryMs: 3_600_000 });
      expect(e.ecr?.pushRegistries).toEqual(['123456789012.dkr.ecr.eu-west-1.amazonaws.com']);
      expect(errorOf(withCache.replace('123456789012.dkr', 'example.com/x'))).toMatch(/^executors\[0\]\.ecr\.pushRegistries\[0\]: expected an ECR registry/);
    });
  });
});
