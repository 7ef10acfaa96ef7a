// The built CLI with a `docker`-style executor on local machines and this host's real dockerd: the job
// runs in its own image, reaches a service by its alias, and leaves no container, network or volume.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, ensureDocker, ensureTestImages, HTTPD_IMAGE, IMAGE_MARKER, jobResources } from '../helpers/docker-images.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
beforeAll(() => {
  ensureDocker();
  ensureTestImages();
}, 120_000);
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
});

const dockerExecutor = [
  '  - name: containers',
  '    provider: local',
  '    style: docker',
  '    maxMachines: 2',
  '    docker:',
  `      defaultImage: ${BUSYBOX_IMAGE}`,
  '      pullPolicy: if-not-present',
  '      waitForServicesTimeout: 10s',
];

describe('e2e: docker style through the built CLI', () => {
  it('runs the job in its image with a service reachable by its alias, then cleans up', async () => {
    stack = await startStack({ executors: dockerExecutor });
    const secret = `DockerSecret${Date.now()}`;
    const p = await createSimplePipeline(stack.fake, [
      {
        name: 'in-image',
        image: BUSYBOX_IMAGE,
        services: [{ name: HTTPD_IMAGE, alias: 'web' }],
        variables: { SERVICE_SECRET: { value: secret, masked: true } },
        script: ['cat /fleetrunner-image-marker', 'wget -qO- http://web/ | head -c 200', 'echo "secret is $SERVICE_SECRET"'],
        after_script: ['echo "after in image: $CI_JOB_STATUS"'],
      },
    ]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job.traceText).toContain(IMAGE_MARKER);
    expect(job.state).toBe('success');
    expect(job.traceText).toContain('secret is [MASKED]');
    expect(job.traceText).not.toContain(secret);
    expect(job.traceText).toContain('after in image: success');
    expect(jobResources(job.id)).toEqual({ containers: [], networks: [], volumes: [] });
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 150_000);

  it('fails a job whose image cannot be had with a clear line', async () => {
    stack = await startStack({ executors: dockerExecutor });
    const p = await createSimplePipeline(stack.fake, [{ name: 'no-image', image: { name: 'fr-test/never-built:1', pull_policy: ['never'] }, script: ['true'] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job.state).toBe('failed');
    expect(job.traceText).toMatch(/fr-test\/never-built:1/);
    // GitLab lists image_pull_failure; older GitLab maps it to runner_system_failure.
    expect(['image_pull_failure', 'runner_system_failure']).toContain(job.failureReason);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 150_000);
});
