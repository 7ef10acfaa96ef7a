// The docker style end to end: a local machine (sshd), the host's real dockerd, images made with
// `docker import` (no registry), stage scripts from the real buildPlan.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BUSYBOX_IMAGE, ENTRYPOINT_IMAGE, HTTPD_IMAGE, IMAGE_MARKER, MISSING_IMAGE, docker, ensureTestImages, jobResources } from '../../helpers/docker-images.js';
import { jobImage } from '../../helpers/job-payload.js';
import { makeRun, startMachine, type TestMachine } from '../executors/harness.js';
import { dockerExecutor, dockerJob, settings } from './harness.js';
import { testToken } from '../../helpers/tokens.js';

const REGISTRY_PASSWORD = testToken('glcbt-');

let m: TestMachine;

beforeAll(async () => {
  ensureTestImages();
  m = await startMachine();
}, 120_000);
afterAll(async () => {
  await m?.dispose();
});

function expectNothingLeft(jobId: number): void {
  expect(jobResources(jobId)).toEqual({ containers: [], networks: [], volumes: [] });
}

describe('DockerExecutor', { timeout: 60_000 }, () => {
  it('runs user stages in the job image under its POSIX sh (no bash in it), in CI_PROJECT_DIR on the shared builds path', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({
      script: [
        'cat /etc/os-release',
        'cat /fleetrunner-image-marker',
        'if command -v bash; then echo "bash found"; exit 9; fi',
        'echo "shell=$(readlink /proc/$$/exe)"',
        'echo "pwd=$(pwd) dir=$CI_PROJECT_DIR"',
        'echo made-in-container > "$CI_PROJECT_DIR/out.txt"',
        'if false | true; then echo "pipefail-"off; else echo "pipefail-"on; fi',
      ],
    });
    const outcome = await dockerExecutor().run(m.info, run.ctx);
    const plain = run.trace.plain();

    expect(outcome, plain).toEqual({ state: 'success' });
    expect(plain).toContain('Preparing the "docker" executor');
    expect(plain).toContain(`Using Docker executor with image ${BUSYBOX_IMAGE} ...`);
    expect(plain).toContain('ID=fleetrunner-test');
    expect(plain).toContain(IMAGE_MARKER);
    expect(plain).toContain('shell=/bin/busybox');
    expect(plain).toContain('pipefail-on');
    const projectDir = join(m.info.buildsDir, 'grp/proj');
    expect(plain).toContain(`pwd=${projectDir} dir=${projectDir}`);
    // Same path on the machine: predefined stages (artifacts, cache) see what the build wrote.
    expect(readFileSync(join(projectDir, 'out.txt'), 'utf8')).toBe('made-in-container\n');
    expect(plain).toContain('Job succeeded');
    expectNothingLeft(run.ctx.job.id);
  });

  it('fails with the script exit code; after_script runs in the same image with CI_JOB_STATUS=failed; nothing is left', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({
      script: ['echo "GITLAB_ENV line" && echo "CARRIED=yes" >> "$GITLAB_ENV"', 'exit 3'],
      afterScript: ['echo "after: $(cat /fleetrunner-image-marker) status=$CI_JOB_STATUS carried=$CARRIED"'],
    });
    const outcome = await dockerExecutor().run(m.info, run.ctx);

    expect(outcome).toEqual({ state: 'failed', reason: 'script_failure', exitCode: 3, message: 'exit code 3' });
    expect(run.trace.plain()).toContain(`after: ${IMAGE_MARKER} status=failed carried=yes`);
    expectNothingLeft(run.ctx.job.id);
  });

  it('honours the image ENTRYPOINT, which sees the job variables (as docker:cli needs DOCKER_TLS_CERTDIR); masked values stay out of the container config', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({
      image: jobImage({ name: ENTRYPOINT_IMAGE }),
      variables: [
        { key: 'ENTRY_INPUT', value: 'from-the-job', public: true },
        { key: 'SECRET_VAR', value: 'sup3r-s3cret-value', public: false, masked: true },
      ],
      script: ['echo "$ENTRYPOINT_SAW"', 'echo "secret-len=${#SECRET_VAR}"', 'sleep 2'],
    });
    const done = dockerExecutor().run(m.info, run.ctx);
    await run.trace.waitFor('secret-len=');
    const [id] = docker('ps', '-q', '--filter', `label=fleetrunner.job=${run.ctx.job.id}`).split('\n');
    const env = docker('inspect', '--format', '{{json .Config.Env}}', id!);
    expect(await done).toEqual({ state: 'success' });

    expect(run.trace.plain()).toContain('entrypoint-saw:from-the-job');
    expect(run.trace.plain()).toContain('secret-len=18');
    expect(env).toContain('ENTRY_INPUT=from-the-job');
    expect(env).not.toContain('sup3r-s3cret-value');
    expect(env).not.toContain(run.ctx.job.token);
  });

  it('honours a job entrypoint override ([""] clears the image entrypoint)', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({
      image: jobImage({ name: ENTRYPOINT_IMAGE, entrypoint: [''] }),
      variables: [{ key: 'ENTRY_INPUT', value: 'x', public: true }],
      script: ['echo "saw=[${ENTRYPOINT_SAW:-}]"'],
    });
    expect(await dockerExecutor().run(m.info, run.ctx)).toEqual({ state: 'success' });
    expect(run.trace.plain()).toContain('saw=[]');
  });

  it('mounts the machine Docker socket into the build container with hostDockerSocket', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({ script: ['test -S /var/run/docker.sock && echo "socket there"'] });
    const outcome = await dockerExecutor({ docker: settings({ hostDockerSocket: true }) }).run(m.info, run.ctx);
    expect(outcome).toEqual({ state: 'success' });
    expect(run.trace.plain()).toContain('socket there');
  });
});

describe('services', { timeout: 60_000 }, () => {
  it('starts services on the job network, reachable by every alias, with the job and service variables', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({
      variables: [{ key: 'SHARED', value: 'job-level', public: true }],
      services: [
        jobImage({
          name: HTTPD_IMAGE,
          alias: 'web, www2 web',
          variables: [{ key: 'SVC_ONLY', value: 'svc-$SHARED' }],
          entrypoint: ['/bin/sh', '-c'],
          command: ['echo "$SVC_ONLY $SHARED $CI_JOB_ID" > /www/env.txt && exec httpd -f -p 80 -h /www'],
        }),
      ],
      script: [
        'wget -qO- http://web/',
        'wget -qO- http://www2/',
        'wget -qO- http://fr-test__httpd/',
        'wget -qO- http://fr-test-httpd/',
        'wget -qO- http://web/env.txt',
      ],
    });
    const outcome = await dockerExecutor().run(m.info, run.ctx);
    const plain = run.trace.plain();

    expect(outcome, plain).toEqual({ state: 'success' });
    expect(plain).toContain(`Starting service ${HTTPD_IMAGE} ...`);
    expect(plain).toContain('Waiting for services to be up and running (timeout 10 seconds)...');
    expect(plain.match(/^hello from the service$/gm)).toHaveLength(4);
    expect(plain).toContain(`svc-job-level job-level ${run.ctx.job.id}`);
    // Up as soon as one exposed port answers (8081 never does), as with dind's 2375/2376.
    expect(plain).not.toContain('probably didn\'t start properly');
    expectNothingLeft(run.ctx.job.id);
  });

  it('warns (does not fail) when a service never opens its port, with its logs', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({
      services: [jobImage({ name: HTTPD_IMAGE, alias: 'slow', command: ['sh', '-c', 'echo "service log line"; sleep 600'], entrypoint: [''] })],
      script: ['echo "script ran"'],
    });
    const outcome = await dockerExecutor({ docker: settings({ waitForServicesTimeoutMs: 2_000 }) }).run(m.info, run.ctx);
    const plain = run.trace.plain();

    expect(outcome, plain).toEqual({ state: 'success' });
    expect(plain).toContain(`WARNING: Service ${HTTPD_IMAGE} (`);
    expect(plain).toContain("probably didn't start properly.");
    expect(plain).toContain('timeout (no answer on 80/tcp, 8081/tcp)');
    expect(plain).toContain('service log line');
    expect(plain).toContain('script ran');
    expectNothingLeft(run.ctx.job.id);
  });

  it('shares a config volume ("/path") between a service and the build container, and removes it at the end', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({
      services: [jobImage({ name: HTTPD_IMAGE, alias: 'writer', entrypoint: ['/bin/sh', '-c'], command: ['echo "written by the service" > /certs/client/ca.pem && exec httpd -f -p 80 -h /www'] })],
      script: ['cat /certs/client/ca.pem'],
    });
    const done = dockerExecutor({ docker: settings({ volumes: ['/certs/client'] }) }).run(m.info, run.ctx);
    await run.trace.waitFor('Waiting for services');
    const volumes = jobResources(run.ctx.job.id).volumes;
    const outcome = await done;

    expect(outcome, run.trace.plain()).toEqual({ state: 'success' });
    expect(volumes).toHaveLength(1);
    expect(volumes[0]).toMatch(new RegExp(`^fr-${run.ctx.job.id}-[0-9a-f]{8}-[0-9a-f]{8}$`));
    expect(run.trace.plain()).toContain('written by the service');
    expectNothingLeft(run.ctx.job.id);
  });
});

describe('pull policies', { timeout: 60_000 }, () => {
  it('never + an image that is not on the machine → image_pull_failure with a clear ERROR line; nothing is left', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({ image: jobImage({ name: MISSING_IMAGE, pull_policy: ['never'] }), script: ['echo "must not run"'] });
    const outcome = await dockerExecutor().run(m.info, run.ctx);
    const plain = run.trace.plain();

    expect(outcome.state === 'failed' && outcome.reason).toBe('image_pull_failure');
    expect(plain).toMatch(new RegExp(`ERROR: failed to pull image "${MISSING_IMAGE}" with specified policies \\[never\\]: .*not present`));
    expect(plain).not.toContain('must not run');
    expectNothingLeft(run.ctx.job.id);
  });

  it('always + an image no registry has → image_pull_failure carrying Docker\'s message', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({ image: jobImage({ name: MISSING_IMAGE, pull_policy: ['always'] }), script: ['true'] });
    const outcome = await dockerExecutor().run(m.info, run.ctx);

    expect(outcome.state === 'failed' && outcome.reason).toBe('image_pull_failure');
    expect(run.trace.plain()).toContain(`Pulling docker image ${MISSING_IMAGE} ...`);
    expect(run.trace.plain()).toMatch(/ERROR: failed to pull image "fr-test\/missing:1" with specified policies \[always\]: .+/);
  });

  it('if-not-present uses the local image without any registry', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({ image: jobImage({ name: BUSYBOX_IMAGE, pull_policy: ['if-not-present'] }), script: ['echo ran-local'] });
    const outcome = await dockerExecutor({ docker: settings({ pullPolicy: 'always' }) }).run(m.info, run.ctx);

    expect(outcome).toEqual({ state: 'success' });
    expect(run.trace.plain()).toContain('Using locally found image version due to "if-not-present" pull policy');
    expect(run.trace.plain()).not.toContain('Pulling docker image');
  });

  it('falls back along the job\'s policies: always fails, if-not-present finds it', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({ image: jobImage({ name: BUSYBOX_IMAGE, pull_policy: ['always', 'if-not-present'] }), script: ['echo fell-back'] });
    expect(await dockerExecutor().run(m.info, run.ctx)).toEqual({ state: 'success' });
    expect(run.trace.plain()).toContain('fell-back');
  });

  it('refuses a policy the executor does not allow, before creating anything', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({ image: jobImage({ name: BUSYBOX_IMAGE, pull_policy: ['always'] }), script: ['true'] });
    const outcome = await dockerExecutor({ docker: settings({ allowedPullPolicies: ['if-not-present', 'never'] }) }).run(m.info, run.ctx);

    expect(outcome).toMatchObject({ state: 'failed', reason: 'runner_configuration_error' });
    expect(run.trace.plain()).toContain('pull_policy [always] defined in the job is not one of the allowed_pull_policies [if-not-present never]');
    expectNothingLeft(run.ctx.job.id);
  });
});

describe('credentials', { timeout: 60_000 }, () => {
  it('hands push logins to the build container read-only via DOCKER_CONFIG, masked, never in a process list, removed at the end', async () => {
    const password = 'ecr-push-Passw0rd-0123456789';
    const run = makeRun();
    run.ctx.job = dockerJob({
      credentials: [{ type: 'registry', url: 'registry.gitlab.test', username: 'gitlab-ci-token', password: REGISTRY_PASSWORD }],
      script: ['echo "DOCKER_CONFIG=$DOCKER_CONFIG"', 'cat "$DOCKER_CONFIG/config.json"', 'echo "$(base64 -d <<EOF\n$(sed -n \'s/.*"auth": "\\(.*\\)".*/\\1/p\' "$DOCKER_CONFIG/config.json")\nEOF\n)"', 'touch "$DOCKER_CONFIG/config.json" 2>/dev/null || echo "read-"only', 'sleep 2'],
    });
    let hostConfig = '';
    const executor = dockerExecutor({
      pushLogins: async () => [{ registry: 'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com', username: 'AWS', password }],
    });
    const done = executor.run(m.info, run.ctx);
    await run.trace.waitFor('read-only\n');
    const ps = docker('ps', '-q', '--filter', `label=fleetrunner.job=${run.ctx.job.id}`);
    const { execFileSync } = await import('node:child_process');
    const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    hostConfig = docker('inspect', '--format', '{{range .Mounts}}{{.Source}} {{end}}', ps.trim().split('\n')[0]!);
    const outcome = await done;
    const text = run.trace.text();

    expect(outcome, run.trace.plain()).toEqual({ state: 'success' });
    expect(run.trace.plain()).toContain('DOCKER_CONFIG=/fleetrunner/docker-config');
    expect(run.trace.plain()).toContain('123456789012.dkr.ecr.eu-west-1.amazonaws.com');
    expect(run.trace.plain()).toContain('read-only');
    expect(run.trace.secrets).toContain(password);
    expect(run.trace.secrets).toContain(REGISTRY_PASSWORD);
    expect(run.trace.secrets).toContain(Buffer.from(`AWS:${password}`).toString('base64'));
    // RecordingTrace does not mask; the runner's masker does. What matters here: it was told.
    expect(processes).not.toContain(password);
    expect(processes).not.toContain(Buffer.from(`AWS:${password}`).toString('base64'));
    const source = hostConfig.split(' ').find((s) => s.endsWith('push-docker-config/config.json'));
    expect(source).toBeDefined();
    expect(existsSync(source!)).toBe(false);
    expect(text).toContain('Job succeeded');
  });
});

describe('pull credentials', { timeout: 60_000 }, () => {
  type Source = 'job credentials' | 'DOCKER_AUTH_CONFIG' | 'registryLogins';
  it.each<Source>(['job credentials', 'DOCKER_AUTH_CONFIG', 'registryLogins'])(
    'pulls with %s through a per-job DOCKER_CONFIG (a fake registry sees them)',
    async (source) => {
      const { createServer } = await import('node:http');
      const seen: string[] = [];
      const server = createServer((req, res) => {
        seen.push(req.headers.authorization ?? '');
        if (!req.headers.authorization) {
          res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fake"', 'Docker-Distribution-API-Version': 'registry/2.0' });
          return res.end();
        }
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      try {
        const registry = `127.0.0.1:${port}`;
        const user = 'puller';
        const password = 'registry-Passw0rd-xyz-123';
        const run = makeRun();
        run.ctx.job = dockerJob({
          image: jobImage({ name: `${registry}/grp/app:1`, pull_policy: ['always'] }),
          script: ['true'],
          ...(source === 'job credentials' && { credentials: [{ type: 'registry', url: registry, username: user, password }] }),
          ...(source === 'DOCKER_AUTH_CONFIG' && {
            variables: [{ key: 'DOCKER_AUTH_CONFIG', value: JSON.stringify({ auths: { [registry]: { username: user, password } } }), masked: false }],
          }),
        });
        const executor = dockerExecutor(source === 'registryLogins' ? { registryLogins: async () => [{ registry, username: user, password }] } : {});
        const outcome = await executor.run(m.info, run.ctx);

        expect(outcome.state === 'failed' && outcome.reason).toBe('image_pull_failure');
        expect(seen).toContain(`Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
        expect(run.trace.secrets).toContain(password);
        expect(run.trace.plain()).toMatch(/ERROR: failed to pull image "127\.0\.0\.1:\d+\/grp\/app:1" with specified policies \[always\]: .*manifest unknown/);
        expectNothingLeft(run.ctx.job.id);
      } finally {
        server.close();
      }
    },
  );
});

describe('handing files back', { timeout: 60_000 }, () => {
  it('the hand-back command gives root-owned files in the builds dir to the machine user', async () => {
    const { chownArgs } = await import('../../../src/executors/docker/docker-args.js');
    const { mkdtempSync, statSync } = await import('node:fs');
    const { execFileSync } = await import('node:child_process');
    const dir = mkdtempSync(join(m.info.buildsDir, 'handback-'));
    docker('run', '--rm', '--network', 'none', '-v', `${m.info.buildsDir}:${m.info.buildsDir}`, BUSYBOX_IMAGE, 'sh', '-c', `mkdir -p ${dir}/p/sub && echo x > ${dir}/p/sub/f && mkdir ${dir}/p.tmp`);
    const argv = chownArgs({ jobId: 5, image: BUSYBOX_IMAGE, buildsDir: m.info.buildsDir, owner: '65534:65534', paths: [`${dir}/p`, `${dir}/p.tmp`] });
    execFileSync(argv[0]!, argv.slice(1));
    expect(statSync(`${dir}/p/sub/f`).uid).toBe(65534);
    expect(statSync(`${dir}/p.tmp`).gid).toBe(65534);
  });
});
