import { describe, expect, it } from 'vitest';

import type { JobPayload } from '../../../src/core/index.js';
import { derivedAliases, serviceAliases } from '../../../src/executors/docker/aliases.js';
import { buildStageScript } from '../../../src/executors/docker/build-stage.js';
import { DETECT_SHELL, buildContainerArgs, commandLine, chownArgs, isRootUser, parseVolume, removeByLabelScript, serviceContainerArgs } from '../../../src/executors/docker/docker-args.js';
import { DockerJob, envFileContent } from '../../../src/executors/docker/docker-job.js';
import type { MachineShell } from '../../../src/executors/docker/machine-shell.js';
import type { DockerStyleSettings } from '../../../src/executors/docker/options.js';
import { authConfigFor, emptyAuthConfig } from '../../../src/executors/docker/registry-auth.js';
import type { TraceWriter } from '../../../src/executors/trace-lines.js';
import type { JobContainers } from '../../../src/jobs/index.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { testToken } from '../../helpers/tokens.js';

const JOB_TOKEN = testToken('glcbt-');

describe('service aliases (GitLab rules)', () => {
  it.each([
    ['docker:dind', [], ['docker']],
    ['docker:27-dind', [], ['docker']],
    ['postgres', [], ['postgres']],
    ['reg.io/grp/img:tag', [], ['reg.io__grp__img', 'reg.io-grp-img']],
    ['reg.io:5000/grp/img:1.2', [], ['reg.io:5000__grp__img', 'reg.io:5000-grp-img']],
    ['tutum/wordpress:latest', [], ['tutum__wordpress', 'tutum-wordpress']],
    ['img@sha256:0123456789abcdef', [], ['img']],
    ['reg.io/grp/img:tag@sha256:abc', [], ['reg.io__grp__img', 'reg.io-grp-img']],
    ['docker:dind', ['docker', 'dind'], ['docker', 'dind']],
    ['mysql:8', ['db', 'database', 'db'], ['mysql', 'db', 'database']],
  ])('%s with %j → %j', (image, explicit, expected) => {
    expect(serviceAliases(image, explicit)).toEqual(expected);
  });

  it('derives nothing from an empty name', () => {
    expect(derivedAliases('')).toEqual([]);
  });
});

const base = {
  name: 'fr-1-abc-1-step_script',
  jobId: 1,
  network: 'fr-1-abc',
  image: 'alpine:3',
  workdir: '/builds/grp/proj',
  mounts: ['/builds:/builds'],
  privileged: false,
  extraHosts: [],
};

function flagValues(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

describe('the build container command', () => {
  it('is docker create -i with the job label and network, the workdir, the image, then the shell detection', () => {
    const argv = buildContainerArgs(base);
    expect(argv.slice(0, 3)).toEqual(['docker', 'create', '-i']);
    expect(flagValues(argv, '--label')).toEqual(['fleetrunner.job=1']);
    expect(flagValues(argv, '--network')).toEqual(['fr-1-abc']);
    expect(flagValues(argv, '-w')).toEqual(['/builds/grp/proj']);
    expect(argv.slice(-4)).toEqual(['alpine:3', 'sh', '-c', DETECT_SHELL]);
    expect(argv).not.toContain('--privileged');
    expect(argv).not.toContain('--cpus');
    expect(argv).not.toContain('--memory');
  });

  // Backed for real by test/e2e/dind-vm.e2e.test.ts: there this flag runs a nested dockerd with every
  // capability, in a VM booted from our user data. Here only the command line is checked.
  it('carries --privileged only when configured, and cpus, memory, extra hosts, volumes, env file', () => {
    const argv = buildContainerArgs({
      ...base,
      privileged: true,
      cpus: '1.5',
      memory: '4g',
      extraHosts: ['gitlab.local:10.0.0.5', 'cache:10.0.0.6'],
      mounts: ['/builds:/builds', 'fr-1-abc-0a1b2c3d:/certs/client', '/srv/data:/data:ro'],
      envFile: '/tmp/job/build.env',
      env: ['DOCKER_CONFIG=/fleetrunner/docker-config'],
    });
    expect(argv.filter((a) => a === '--privileged')).toHaveLength(1);
    expect(flagValues(argv, '--cpus')).toEqual(['1.5']);
    expect(flagValues(argv, '--memory')).toEqual(['4g']);
    expect(flagValues(argv, '--add-host')).toEqual(['gitlab.local:10.0.0.5', 'cache:10.0.0.6']);
    expect(flagValues(argv, '-v')).toEqual(['/builds:/builds', 'fr-1-abc-0a1b2c3d:/certs/client', '/srv/data:/data:ro']);
    expect(flagValues(argv, '--env-file')).toEqual(['/tmp/job/build.env']);
    expect(flagValues(argv, '-e')).toEqual(['DOCKER_CONFIG=/fleetrunner/docker-config']);
  });

  it('replaces the entrypoint with its first element and puts the rest before the shell detection', () => {
    const argv = buildContainerArgs({ ...base, entrypoint: ['/bin/tini', '--'] });
    expect(flagValues(argv, '--entrypoint')).toEqual(['/bin/tini']);
    expect(argv.slice(-5)).toEqual(['alpine:3', '--', 'sh', '-c', DETECT_SHELL]);
    expect(flagValues(buildContainerArgs({ ...base, entrypoint: [''] }), '--entrypoint')).toEqual(['']);
    expect(commandLine(buildContainerArgs({ ...base, entrypoint: [''] }))).toContain("--entrypoint '' ");
  });

  it('passes platform and user from executor_opts', () => {
    const argv = buildContainerArgs({ ...base, platform: 'linux/arm64', user: '1000:1000' });
    expect(flagValues(argv, '--platform')).toEqual(['linux/arm64']);
    expect(flagValues(argv, '--user')).toEqual(['1000:1000']);
  });
});

describe('the service command', () => {
  // Backed for real by test/e2e/dind-vm.e2e.test.ts: there this flag runs a nested dockerd with every
  // capability, in a VM booted from our user data. Here only the command line is checked.
  it('runs detached on the job network under each alias, with entrypoint and command', () => {
    const argv = serviceContainerArgs({
      ...base,
      name: 'fr-1-abc-svc-0-docker',
      image: 'docker:27-dind',
      aliases: ['docker', 'dind'],
      privileged: true,
      entrypoint: ['dockerd-entrypoint.sh'],
      command: ['--tls=false'],
    });
    expect(argv.slice(0, 3)).toEqual(['docker', 'run', '-d']);
    expect(flagValues(argv, '--network-alias')).toEqual(['docker', 'dind']);
    expect(argv).toContain('--privileged');
    expect(flagValues(argv, '--entrypoint')).toEqual(['dockerd-entrypoint.sh']);
    expect(argv.slice(-2)).toEqual(['docker:27-dind', '--tls=false']);
  });
});

describe('quoting and parsing', () => {
  it('quotes every word that is not plainly safe', () => {
    expect(commandLine(['docker', 'run', "it's", 'a b', '$HOME', '', 'x=y'])).toBe(`docker run 'it'\\''s' 'a b' '$HOME' '' x=y`);
  });

  it.each([
    ['/certs/client', { kind: 'job', containerPath: '/certs/client' }],
    ['/cache', { kind: 'job', containerPath: '/cache' }],
    ['/srv/data:/data', { kind: 'bind', spec: '/srv/data:/data' }],
    ['/srv/data:/data:ro', { kind: 'bind', spec: '/srv/data:/data:ro' }],
    ['named:/data', { kind: 'bind', spec: 'named:/data' }],
  ])('volume %s', (entry, expected) => {
    expect(parseVolume(entry)).toEqual(expected);
  });

  it('removes containers with their anonymous volumes, then networks, then volumes, by the job label', () => {
    const s = removeByLabelScript(42);
    expect(s).toContain("docker ps -aq --filter 'label=fleetrunner.job=42'");
    expect(s).toContain('docker rm -f -v');
    expect(s).toContain('docker network rm');
    expect(s).toContain('docker volume rm -f');
  });
});

describe('handing files back to a non-root machine user', () => {
  it('runs chown -R as root in the job image, without network, labelled with the job', () => {
    const argv = chownArgs({ jobId: 9, image: 'alpine:3', buildsDir: '/builds', owner: '1000:1000', paths: ['/builds/g/p', '/builds/g/p.tmp'] });
    expect(argv).toEqual([
      'docker', 'run', '--rm', '--label', 'fleetrunner.job=9', '--network', 'none', '--user', '0:0',
      '-v', '/builds:/builds', '--entrypoint', 'chown', 'alpine:3', '-R', '--', '1000:1000', '/builds/g/p', '/builds/g/p.tmp',
    ]);
  });
});

describe('env files', () => {
  it('keeps the last definition and leaves out what the format cannot carry', () => {
    expect(
      envFileContent([
        { key: 'A', value: '1' },
        { key: 'B', value: 'two words = fine' },
        { key: 'A', value: '3' },
        { key: 'MULTI', value: 'line1\nline2' },
        { key: 'CR', value: 'x\r' },
        { key: 'bad-name', value: 'x' },
      ]),
    ).toBe('B=two words = fine\nA=3\n');
  });
});

const settings: DockerStyleSettings = {
  defaultImage: 'alpine:latest',
  pullPolicy: 'always',
  allowedPullPolicies: ['always', 'if-not-present', 'never'],
  volumes: ['/certs/client', '/srv/host:/srv/in:ro'],
  cpus: '2',
  memory: '1g',
  extraHosts: ['h:1.2.3.4'],
  hostDockerSocket: false,
  servicesPrivileged: true,
  waitForServicesTimeoutMs: 30_000,
};

const job = (over: Partial<JobPayload> = {}): JobPayload => ({
  ...jobPayload({
    id: 77,
    token: JOB_TOKEN,
    job_info: { name: 't', project_id: 1 },
    git_info: { repo_url: 'https://x/g/p.git', ref: 'main', sha: '0'.repeat(40) },
    runner_info: {},
    variables: [{ key: 'SECRET', value: 'masked-secret-value', masked: true }],
  }),
  ...over,
});

function dockerJob(o: { privileged: boolean; hostDockerSocket?: boolean; pushPassword?: string; jobOver?: Partial<JobPayload>; containers?: Partial<JobContainers> }): DockerJob {
  return new DockerJob({
    shell: { runDir: '/tmp/fleetrunner-job-77-x' } as MachineShell,
    trace: {} as TraceWriter,
    settings: { ...settings, hostDockerSocket: o.hostDockerSocket ?? false },
    privileged: o.privileged,
    job: job(o.jobOver),
    containers: { services: [], environment: [{ key: 'CI_JOB_ID', value: '77' }], ...o.containers },
    buildsDir: '/builds',
    projectDir: '/builds/g/p',
    pullAuth: emptyAuthConfig(),
    pushAuth: o.pushPassword ? authConfigFor([{ registry: '1.dkr.ecr.eu-west-1.amazonaws.com', username: 'AWS', password: o.pushPassword }]) : emptyAuthConfig(),
  });
}

describe('DockerJob.buildContainer', () => {
  // Backed for real by test/e2e/dind-vm.e2e.test.ts: there this flag runs a nested dockerd with every
  // capability, in a VM booted from our user data. Here only the command line is checked.
  it('is privileged only when the executor is configured so, never because of the job', () => {
    const asks = { jobOver: { image: { name: 'alpine', executor_opts: { docker: { privileged: true } } } as never, variables: [{ key: 'privileged', value: 'true' }] } };
    expect(buildContainerArgs(dockerJob({ privileged: false, ...asks }).buildContainer('c'))).not.toContain('--privileged');
    expect(buildContainerArgs(dockerJob({ privileged: true }).buildContainer('c'))).toContain('--privileged');
  });

  it('mounts the builds dir at the same path, config volumes (job volumes by name), the socket when asked', () => {
    const c = dockerJob({ privileged: false, hostDockerSocket: true }).buildContainer('c');
    expect(c.mounts[0]).toBe('/builds:/builds');
    expect(c.mounts).toContain('/srv/host:/srv/in:ro');
    expect(c.mounts).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(c.workdir).toBe('/builds/g/p');
    expect(c.cpus).toBe('2');
    expect(c.memory).toBe('1g');
    expect(c.extraHosts).toEqual(['h:1.2.3.4']);
    expect(c.image).toBe('alpine:latest');
  });

  it('never puts a secret in the argv: variables go through the env file, push logins through a mounted config', () => {
    const password = 'push-Passw0rd-abcdefghijkl';
    const dj = dockerJob({ privileged: true, pushPassword: password });
    const c = dj.buildContainer('fr-77-x-1-step_script');
    // The push config is only mounted once written (prepare); the argv has paths and names only.
    const line = commandLine(buildContainerArgs(c));
    for (const secret of [password, Buffer.from(`AWS:${password}`).toString('base64'), 'masked-secret-value', JOB_TOKEN]) {
      expect(line).not.toContain(secret);
    }
    const script = buildStageScript(c, "export SECRET='masked-secret-value'\necho hi\n", '/tmp/m');
    const startAt = script.indexOf('\ndocker start ');
    const create = script.slice(0, startAt);
    const start = script.slice(startAt + 1).split('\n')[0];
    expect(create.startsWith('docker create -i ')).toBe(true);
    expect(create).not.toContain('masked-secret-value');
    expect(start).toMatch(/^docker start -a -i fr-77-x-1-step_script <<'__FLEETRUNNER_STAGE_[0-9a-f]{16}__'$/);
  });
});

describe('handing the checkout to the image user (executor_opts.docker.user)', () => {
  it('needs no hand-over for root or no user', () => {
    for (const u of [undefined, '', '0', 'root', '0:0', 'root:root', 'root:0']) expect(isRootUser(u)).toBe(true);
    for (const u of ['1000', '1000:1000', 'nobody', 'app:app', '0:1000']) expect(isRootUser(u)).toBe(false);
  });

  it('chowns the project and its tmp dir as root in the job image; a user from the payload is never read as an option', () => {
    expect(chownArgs({ jobId: 7, image: 'img:1', buildsDir: '/builds', owner: '-h', paths: ['/builds/g/p', '/builds/g/p.tmp'] })).toEqual([
      'docker', 'run', '--rm', '--label', 'fleetrunner.job=7', '--network', 'none', '--user', '0:0',
      '-v', '/builds:/builds', '--entrypoint', 'chown', 'img:1', '-R', '--', '-h', '/builds/g/p', '/builds/g/p.tmp',
    ]);
  });
});
