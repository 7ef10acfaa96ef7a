// The mechanism that drives an image with no sshd, for real on the local Docker engine, as a Fargate task
// runs it: a helper container from an image holding only the agent bundle (docker import, like every test
// image here) copies it into a shared volume with the task definition's entry point and exits 0; the job's
// container — fr-test/busybox, which has no sshd and no bash — then runs the agent as its entry point. The
// coordinator's own SSH client reaches it with the pinned host key and the client key of the task's
// overrides, and the shell-style executor runs a whole job in the image unchanged: detached stages, the
// image's own files and tools, a failing script's exit code.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AGENT_BUILDS_DIR, AGENT_CACHE_DIR, AGENT_ENTRYPOINT, AGENT_STATE_DIR, BUNDLE_MOUNT, HELPER_ENTRYPOINT, silentLogger, type ConnectionInfo } from '../../src/core/index.js';
import { connectSsh } from '../../src/executors/ssh-connection.js';
import { generateEd25519 } from '../../src/providers/ssh-keys.js';
import { BUSYBOX_IMAGE, IMAGE_MARKER, docker, ensureDocker, ensureTestImages } from '../helpers/docker-images.js';
import { buildHelperImage } from '../helpers/agent-image.js';
import { executorFor, makePlan, makeRun, stage, stagesRun } from '../integration/executors/harness.js';

const suffix = `${process.pid}-${Date.now().toString(36)}`;
const HELPER_IMAGE = `fr-test/fleetrunner-helper:${suffix}`;
const VOLUME = `fr-agent-${suffix}`;
const JOB_CONTAINER = `fr-agent-job-${suffix}`;
const AGENT_PORT = 2222;

let info: ConnectionInfo;

async function connectWhenUp(c: ConnectionInfo): Promise<void> {
  try {
    (await connectSsh(c, { logger: silentLogger, connectTimeoutMs: 30_000, retryDelayMs: 100 })).close();
  } catch (e) {
    throw new Error(`the agent never answered: ${String(e)}\n${docker('logs', JOB_CONTAINER)}`);
  }
}

beforeAll(async () => {
  ensureDocker();
  ensureTestImages();
  // The helper image: the bundle at /bundle and nothing else (no shell, no libc outside the bundle).
  buildHelperImage(HELPER_IMAGE);
  docker('volume', 'create', VOLUME);
  // The helper container, as the task definition runs it: its entry point copies the bundle and exits 0.
  docker('run', '--rm', '-v', `${VOLUME}:${BUNDLE_MOUNT}`, '--entrypoint', HELPER_ENTRYPOINT[0]!, HELPER_IMAGE, ...HELPER_ENTRYPOINT.slice(1));
  const host = generateEd25519('agent-host');
  const client = generateEd25519('agent-client');
  docker(
    'run', '-d', '--name', JOB_CONTAINER, '--init', // initProcessEnabled
    '-v', `${VOLUME}:${BUNDLE_MOUNT}`,
    '-e', `FLEETRUNNER_AGENT_HOST_KEY=${host.private}`,
    '-e', `FLEETRUNNER_AGENT_AUTHORIZED_KEY=${client.public}`,
    '-e', `FLEETRUNNER_AGENT_PORT=${AGENT_PORT}`,
    '-p', `127.0.0.1::${AGENT_PORT}`,
    '--entrypoint', AGENT_ENTRYPOINT[0]!,
    BUSYBOX_IMAGE,
  );
  const port = Number(docker('port', JOB_CONTAINER, `${AGENT_PORT}/tcp`).trim().split(':').pop());
  info = { host: '127.0.0.1', port, username: 'fleetrunner', privateKey: client.private, hostPublicKey: host.public, buildsDir: AGENT_BUILDS_DIR, cacheDir: AGENT_CACHE_DIR, stateDir: AGENT_STATE_DIR };
  await connectWhenUp(info);
}, 300_000);

afterAll(() => {
  for (const args of [['rm', '-f', JOB_CONTAINER], ['volume', 'rm', '-f', VOLUME], ['image', 'rm', '-f', HELPER_IMAGE]]) {
    try {
      docker(...args);
    } catch {
      // already gone
    }
  }
});

describe('fargate agent: an image with no sshd, driven over SSH (real Docker)', () => {
  it('the image has no sshd and no bash of its own; commands run in its filesystem with the bundle\'s bash', async () => {
    const conn = await connectSsh(info, { logger: silentLogger, connectTimeoutMs: 5_000 });
    try {
      const out = await conn.output('echo "bash=$BASH_VERSION"; cat /fleetrunner-image-marker; for p in /usr/sbin/sshd /bin/bash /usr/bin/bash; do [ -e "$p" ] && echo "has $p"; done; echo "agent-env=${FLEETRUNNER_AGENT_HOST_KEY:-unset}"');
      expect(out).toMatch(/bash=5\.\d/);
      expect(out).toContain(IMAGE_MARKER);
      expect(out).not.toContain('has ');
      expect(out).toContain('agent-env=unset'); // the host key is not handed to the job
    } finally {
      conn.close();
    }
  });

  it('refuses a client key other than the one in the task\'s overrides', async () => {
    const other = generateEd25519('intruder');
    await expect(connectSsh({ ...info, privateKey: other.private }, { logger: silentLogger, connectTimeoutMs: 1_000, retryDelayMs: 100 })).rejects.toThrow();
  });

  it('the shell-style executor runs a job in the image unchanged: stages in order, a failing script\'s exit code', async () => {
    const run = makeRun();
    const ok = await executorFor(
      makePlan(info, { user: [stage('step_script', `echo stage:step_script\ncat /fleetrunner-image-marker\nbusybox | head -1\necho "in $(pwd)"`)] }),
    ).run(info, run.ctx);
    expect(ok).toEqual({ state: 'success' });
    expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script', 'after_script', 'on_success', 'cleanup']);
    expect(run.trace.plain()).toContain(IMAGE_MARKER);
    expect(run.trace.plain()).toContain('BusyBox');

    const failed = makeRun();
    const outcome = await executorFor(makePlan(info, { user: [stage('step_script', 'echo before\nexit 7')] })).run(info, failed.ctx);
    expect(outcome).toMatchObject({ state: 'failed', reason: 'script_failure', exitCode: 7 });
    expect(failed.trace.plain()).toContain('stage:after_script status=failed');
  });
});
