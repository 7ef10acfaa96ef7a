// Cancel, abort and timeout in the docker style: the containers really stop, and every container,
// network and volume of the job is removed whatever the ending.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { shutdownCutOff } from '../../../src/executors/index.js';
import { HTTPD_IMAGE, ensureTestImages, jobResources, runningContainers } from '../../helpers/docker-images.js';
import { jobImage } from '../../helpers/job-payload.js';
import { makeRun, startMachine, type TestMachine } from '../executors/harness.js';
import { dockerExecutor, dockerJob, settings } from './harness.js';

let m: TestMachine;

beforeAll(async () => {
  ensureTestImages();
  m = await startMachine();
}, 120_000);
afterAll(async () => {
  await m?.dispose();
});

const withService = (script: string[], afterScript?: string[], timeoutS?: number) =>
  dockerJob({
    services: [jobImage({ name: HTTPD_IMAGE, alias: 'web' })],
    script,
    ...(afterScript && { afterScript }),
    ...(timeoutS !== undefined && { timeoutS }),
  });

describe('stopping a docker job', { timeout: 60_000 }, () => {
  it('graceful cancel kills the build container, runs after_script (canceled), then removes everything', async () => {
    const run = makeRun();
    run.ctx.job = withService(['echo "long "step', 'sleep 600'], ['echo "after: status=$CI_JOB_STATUS"']);
    const done = dockerExecutor({ docker: settings({ volumes: ['/cache'] }) }).run(m.info, run.ctx);
    await run.trace.waitFor('long step');
    expect(runningContainers(run.ctx.job.id)).toHaveLength(2); // service + build container
    const t0 = Date.now();
    run.cancel();
    const outcome = await done;

    expect(outcome).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(run.trace.plain()).toContain('after: status=canceled');
    expect(runningContainers(run.ctx.job.id)).toEqual([]);
    expect(jobResources(run.ctx.job.id)).toEqual({ containers: [], networks: [], volumes: [] });
  });

  it('hard abort (shutdown cut-off) stops at once without after_script, and removes everything', async () => {
    const run = makeRun();
    run.ctx.job = withService(['echo "long "step', 'sleep 600'], ['echo "after "ran']);
    const done = dockerExecutor().run(m.info, run.ctx);
    await run.trace.waitFor('long step');
    run.abort(shutdownCutOff());
    const outcome = await done;

    expect(outcome).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
    expect(run.trace.plain()).not.toContain('after ran');
    expect(jobResources(run.ctx.job.id)).toEqual({ containers: [], networks: [], volumes: [] });
  });

  it('the job deadline ends a running container as job_execution_timeout, and removes everything', async () => {
    const run = makeRun();
    run.ctx.job = withService(['echo "long "step', 'sleep 600'], ['echo "after: status=$CI_JOB_STATUS"'], 4);
    const outcome = await dockerExecutor().run(m.info, run.ctx);

    expect(outcome).toEqual({ state: 'failed', reason: 'job_execution_timeout', message: 'execution took longer than 4 seconds' });
    expect(jobResources(run.ctx.job.id)).toEqual({ containers: [], networks: [], volumes: [] });
  });

  it('a cancel while services are being waited for ends the job as canceled, with nothing left', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({
      services: [jobImage({ name: HTTPD_IMAGE, alias: 'mute', entrypoint: [''], command: ['sleep', '600'] })],
      script: ['echo "must not "run'],
    });
    const done = dockerExecutor({ docker: settings({ waitForServicesTimeoutMs: 60_000 }) }).run(m.info, run.ctx);
    await run.trace.waitFor('Waiting for services');
    run.cancel();
    const outcome = await done;

    expect(outcome).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(run.trace.plain()).not.toContain('must not run');
    expect(jobResources(run.ctx.job.id)).toEqual({ containers: [], networks: [], volumes: [] });
  });

  it('a build container Docker cannot create is a runner_system_failure with Docker\'s reason', async () => {
    const run = makeRun();
    run.ctx.job = dockerJob({ script: ['echo "must not "run'] });
    const outcome = await dockerExecutor({ docker: settings({ cpus: '100000' }) }).run(m.info, run.ctx);

    expect(outcome).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
    expect(outcome.state === 'failed' && outcome.message).toContain('could not be created or started');
    expect(run.trace.plain()).toMatch(/range of CPUs|cpus/i);
    expect(jobResources(run.ctx.job.id)).toEqual({ containers: [], networks: [], volumes: [] });
  });
});
