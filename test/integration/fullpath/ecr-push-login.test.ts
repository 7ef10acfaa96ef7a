// ECR push for DinD jobs, wired end to end: the real coordinator with a docker-style executor whose config
// lists a push registry; ECR is faked at the SDK boundary (aws-sdk-client-mock on every ECRClient); the
// job's container (real dockerd) gets a Docker config with a login for that registry, and the trace never
// shows the password or its base64 form.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../../../src/cli/run.js';
import { compileConfig } from '../../../src/config/index.js';
import { silentLogger } from '../../../src/core/index.js';
import { FakeGitLab } from '../../../src/fakegitlab/index.js';
import { BUSYBOX_IMAGE, ensureDocker, ensureTestImages, jobResources } from '../../helpers/docker-images.js';

const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const root = mkdtempSync(join(tmpdir(), 'fr-ecr-'));
const ecr = mockClient(ECRClient);

beforeAll(() => {
  ensureDocker();
  ensureTestImages();
}, 120_000);
afterAll(() => {
  ecr.restore();
  rmSync(root, { recursive: true, force: true });
});

describe('ECR push login for a docker-style job', () => {
  it('hands the job a short-lived login for its push registry, masked in the trace and removed after', async () => {
    const password = `ecrpw${Date.now()}Secret`;
    const auth = Buffer.from(`AWS:${password}`).toString('base64');
    ecr.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [{ authorizationToken: auth, expiresAt: new Date(Date.now() + 12 * 3600_000), proxyEndpoint: `https://${REGISTRY}` }] });

    const gitlab = new FakeGitLab({ traceUpdateIntervalS: 1 });
    await gitlab.start();
    const runner = gitlab.addRunner();
    const config = {
      ...compileConfig({
        gitlab: { url: gitlab.url, token: runner.token },
        concurrent: 1,
        checkInterval: '1s',
        stateDir: join(root, 'state'),
        log: { level: 'error' },
        executors: [
          {
            name: 'dind', provider: 'local', style: 'docker', maxMachines: 1,
            local: { root: join(root, 'machines') },
            docker: { defaultImage: BUSYBOX_IMAGE, pullPolicy: 'if-not-present' },
            ecr: { pushRegistries: [REGISTRY] },
          },
        ],
      }),
      // Faster polling than a config file may ask for (checkInterval ≥ 1s): the test drives every job itself.
      checkIntervalMs: 100,
    };
    const handle = await startCoordinator(config, { logger: silentLogger });
    try {
      const project = await gitlab.createProject({ path: 'infra/image', files: { 'Dockerfile': 'FROM scratch\n' } });
      const p = await gitlab.createPipeline(project, [
        {
          name: 'push',
          image: BUSYBOX_IMAGE,
          script: ['echo "docker config at $DOCKER_CONFIG"', `grep -q '${REGISTRY}' "$DOCKER_CONFIG/config.json" && echo login-present`, 'cat "$DOCKER_CONFIG/config.json"'],
        },
      ]);
      const job = await gitlab.waitForJobState(p.jobIds[0]!, ['success', 'failed'], 120_000);
      expect(job.state).toBe('success');
      expect(job.traceText).toContain('docker config at /fleetrunner/docker-config');
      expect(job.traceText).toContain('login-present');
      expect(job.traceText).not.toContain(password);
      expect(job.traceText).not.toContain(Buffer.from(`AWS:${password}`).toString('base64'));
      expect(job.traceText).toContain('[MASKED]');
      expect(ecr.commandCalls(GetAuthorizationTokenCommand).length).toBe(1);
      expect(jobResources(job.id)).toEqual({ containers: [], networks: [], volumes: [] });
    } finally {
      handle.stop();
      expect(await handle.done).toBe(0);
      await gitlab.stop();
    }
    expect(gitlab.violations).toEqual([]);
  }, 150_000);
});
