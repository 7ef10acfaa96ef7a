// The docker style's part of job.json, read back by a successor: anything that is not a whole record is
// refused (the machine is then removed rather than guessed about).
import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { dockerState, readDockerState } from '../../../src/executors/docker/job-state.js';

describe('docker job state in job.json', () => {
  it('round-trips an unprepared and a prepared record', () => {
    const before = dockerState({ runDir: '/tmp/fleetrunner-job-7-ab', prepared: false });
    expect(readDockerState(JSON.parse(JSON.stringify(before)))).toEqual({ runDir: '/tmp/fleetrunner-job-7-ab', prepared: false });
    const after = dockerState({ runDir: '/tmp/d', prepared: true, job: { prefix: 'fr-7-0a1b2c3d', owner: '1000:1000', pushConfigFile: '/tmp/d/push/config.json' }, secrets: [randomBytes(12).toString('hex')] });
    expect(readDockerState(JSON.parse(JSON.stringify(after)))).toEqual(after.docker);
  });

  it.each([
    ['no state', undefined],
    ['another style', { shell: {} }],
    ['a relative run dir', { docker: { runDir: 'tmp/x', prepared: false } }],
    ['prepared without its containers', { docker: { runDir: '/tmp/x', prepared: true } }],
    ['a prefix that is not ours', { docker: { runDir: '/tmp/x', prepared: true, job: { prefix: 'evil; rm -rf /' } } }],
  ])('refuses %s', (_why, state) => {
    expect(readDockerState(state)).toBeUndefined();
  });
});
