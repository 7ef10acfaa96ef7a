import { describe, expect, it } from 'vitest';

import { taskRequestFor } from '../../../src/runner/task-request.js';
import { jobPayload } from '../../helpers/job-payload.js';

const bounds = { cpu: { default: 1024, min: 256, max: 4096 }, memoryMiB: { default: 2048, min: 512, max: 30720 } };

function job(extra: Record<string, unknown>) {
  return jobPayload({ id: 7, token: 't', job_info: { name: 'j', project_id: 1 }, git_info: { repo_url: 'http://example.invalid/r.git', ref: 'main', sha: '0'.repeat(40) }, runner_info: {}, variables: [], ...extra });
}

describe('a job\'s task request (fargate)', () => {
  it('is the job\'s image as written, expanded, and its size', () => {
    const r = taskRequestFor(job({ image: { name: '$REG/tools:1' }, variables: [{ key: 'REG', value: 'registry.example.com', public: true }, { key: 'FLEETRUNNER_CPU', value: '2', public: true }] }), bounds);
    expect(r).toEqual({ ok: true, task: { image: 'registry.example.com/tools:1', cpuUnits: 2048 } });
  });

  it('a job without image: asks for nothing (the executor\'s image)', () => {
    expect(taskRequestFor(job({}), bounds)).toEqual({ ok: true, task: {} });
  });

  it('refuses services and a size Fargate does not offer, saying which', () => {
    const svc = taskRequestFor(job({ image: { name: 'node:20' }, services: [{ name: 'postgres:16' }] }), bounds);
    expect(svc).toMatchObject({ ok: false, reason: expect.stringContaining('runs no services (postgres:16)') });
    const size = taskRequestFor(job({ variables: [{ key: 'FLEETRUNNER_CPU', value: '1', public: true }, { key: 'FLEETRUNNER_MEMORY', value: '1Gi', public: true }] }), bounds);
    expect(size).toMatchObject({ ok: false, reason: expect.stringContaining('Fargate has no task with 1024 CPU units and 1024 MiB') });
  });
});
