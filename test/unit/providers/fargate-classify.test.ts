import { describe, expect, it } from 'vitest';

import { ImagePullError, MachineLostError, PermanentError, RetryableError } from '../../../src/core/index.js';
import { classifyEcsError, classifyRunFailure } from '../../../src/providers/fargate/index.js';
import { stopError, toMachineState } from '../../../src/providers/fargate/task-state.js';
import { ecsError } from '../../helpers/fake-ecs.js';

describe('fargate: ECS answers by class', () => {
  it.each([
    [{ reason: 'RESOURCE:ENI' }, { kind: 'capacity', scope: 'subnet' }],
    [{ reason: 'Capacity is unavailable at this time. Please try again later or in a different availability zone' }, { kind: 'capacity', scope: 'provider' }],
    [{ reason: 'MISSING' }, { kind: 'permanent' }],
    [{}, { kind: 'permanent' }],
  ])('RunTask failure %o is %o', (f, want) => {
    expect(classifyRunFailure(f)).toMatchObject(want);
  });

  it.each([
    ['ThrottlingException', 'Rate exceeded', 400, 'throttled'],
    ['ServerException', 'boom', 500, 'transient'],
    ['ClientException', 'Unable to describe task definition.', 400, 'permanent'],
    ['AccessDeniedException', 'not authorized', 400, 'permanent'],
    ['ClusterNotFoundException', 'Cluster not found.', 400, 'permanent'],
    ['InvalidParameterException', 'The referenced task was not found.', 400, 'not-found'],
  ])('%s is %s', (code, message, status, kind) => {
    expect(classifyEcsError(ecsError(code, message, status)).kind).toBe(kind);
  });

  it.each([
    [{ lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' }, 'pending'],
    [{ lastStatus: 'RUNNING', desiredStatus: 'RUNNING' }, 'running'],
    [{ lastStatus: 'RUNNING', desiredStatus: 'STOPPED' }, 'stopping'],
    [{ lastStatus: 'STOPPED', desiredStatus: 'STOPPED' }, 'terminated'],
    [{ lastStatus: 'SOMETHING_NEW', desiredStatus: 'RUNNING' }, 'unknown'],
  ])('task %o is %s', (t, state) => {
    expect(toMachineState(t)).toBe(state);
  });

  it('a stopped task is its stop reason as the error the fleet acts on', () => {
    const pull = stopError({ stopCode: 'TaskFailedToStart', stoppedReason: 'CannotPullContainerError: ref not found', containers: [{ name: 'job', reason: 'CannotPullContainerError: ref not found' }] });
    expect(pull).toBeInstanceOf(ImagePullError);
    expect(pull.message).toBe('task stopped (TaskFailedToStart): CannotPullContainerError: ref not found; container job: CannotPullContainerError: ref not found');
    expect(stopError({ stopCode: 'SpotInterruption', stoppedReason: 'Your Spot Task was interrupted.' })).toBeInstanceOf(RetryableError);
    expect(stopError({ stopCode: 'TaskFailedToStart', stoppedReason: 'ResourceInitializationError: AccessDenied on secrets' })).toBeInstanceOf(PermanentError);
    const exited = stopError({ stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited', containers: [{ name: 'job', exitCode: 137 }] });
    expect(exited).toBeInstanceOf(MachineLostError);
    expect(exited.message).toContain('container job exited 137');
  });
});
