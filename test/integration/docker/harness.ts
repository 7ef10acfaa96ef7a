// A DockerExecutor on a real local machine (sshd) with the host's real dockerd, and jobs built by the real
// buildPlan/jobContainers (GIT_STRATEGY=none: no repository needed).

import { silentLogger, type ConnectionInfo, type JobImage, type JobPayload, type JobStep, type JobVariable } from '../../../src/core/index.js';
import { DockerExecutor, type DockerExecutorOptions, type DockerStyleSettings } from '../../../src/executors/docker/index.js';
import { buildPlan, jobContainers, type PlanContext } from '../../../src/jobs/index.js';
import { BUSYBOX_IMAGE } from '../../helpers/docker-images.js';
import { jobImage, jobStep } from '../../helpers/job-payload.js';
import { makeJob } from '../executors/harness.js';

export function settings(over: Partial<DockerStyleSettings> = {}): DockerStyleSettings {
  return {
    defaultImage: BUSYBOX_IMAGE,
    pullPolicy: 'if-not-present',
    allowedPullPolicies: ['always', 'if-not-present', 'never'],
    volumes: [],
    extraHosts: [],
    hostDockerSocket: false,
    servicesPrivileged: false,
    waitForServicesTimeoutMs: 10_000,
    ...over,
  };
}

export function planContext(info: ConnectionInfo): PlanContext {
  return {
    buildsDir: info.buildsDir,
    cacheDir: info.cacheDir,
    gitlabUrl: 'http://127.0.0.1:9',
    runner: { version: '0.0.0-test', revision: 'test', shortToken: 'tEsT1234', executorName: 'docker-test', concurrentId: 0, platform: 'linux', arch: 'amd64' },
    sharedEnvironment: false,
  };
}

export function dockerExecutor(o: Partial<DockerExecutorOptions> & { docker?: DockerStyleSettings } = {}): DockerExecutor {
  return new DockerExecutor({
    planFor: (job, machine) => buildPlan(job, planContext(machine)),
    containersFor: (job, machine) => jobContainers(job, planContext(machine)),
    docker: settings(),
    privileged: false,
    logger: silentLogger,
    connectTimeoutMs: 10_000,
    killGraceMs: 1_000,
    cleanupTimeoutMs: 30_000,
    ...o,
  });
}

export interface DockerJobSpec {
  script: string[];
  afterScript?: string[];
  image?: JobImage;
  services?: JobImage[];
  variables?: JobVariable[];
  timeoutS?: number;
  credentials?: JobPayload['credentials'];
}

/** A payload with the given steps; sources are not fetched (GIT_STRATEGY=none). */
export function dockerJob(spec: DockerJobSpec): JobPayload {
  // Job ids label the Docker resources: test files run in parallel against one dockerd, so each job gets
  // an id no other file will use (makeJob's counter is per file).
  const job = { ...makeJob(), id: 1_000_000 + Math.floor(Math.random() * 1_000_000_000) };
  const steps: JobStep[] = [jobStep({ name: 'script', script: spec.script, when: 'on_success' })];
  if (spec.afterScript) steps.push(jobStep({ name: 'after_script', script: spec.afterScript, when: 'always' }));
  return {
    ...job,
    job_info: { ...job.job_info, name: 'docker-test', project_id: 7, project_full_path: 'grp/proj' },
    runner_info: { timeout: spec.timeoutS ?? 120 },
    variables: [
      { key: 'CI_JOB_ID', value: String(job.id), public: true },
      { key: 'CI_JOB_TOKEN', value: job.token, public: false, masked: true },
      { key: 'GIT_STRATEGY', value: 'none', public: true },
      ...(spec.variables ?? []),
    ],
    steps,
    image: spec.image ?? jobImage({ name: BUSYBOX_IMAGE }),
    services: spec.services ?? [],
    ...(spec.credentials && { credentials: spec.credentials }),
  };
}
