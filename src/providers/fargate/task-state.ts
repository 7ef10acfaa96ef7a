// A task's ECS status as the fleet sees it, in one switch, and what a task that stopped on its own says:
// the stop code and reason, and the job container's exit code and reason, as the error the fleet and the
// job's trace get (gitlab-runner's failure reasons: a pull that failed is image_pull_failure, the rest is
// runner_system_failure).

import type { Task } from '@aws-sdk/client-ecs';

import { ImagePullError, MachineLostError, PermanentError, RetryableError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { MachineState } from '../../core/machine.js';

export const JOB_CONTAINER = 'job';
export const HELPER_CONTAINER = 'fleetrunner-helper';

export function toMachineState(t: Pick<Task, 'lastStatus' | 'desiredStatus' | 'taskArn'>, log?: Logger): MachineState {
  if (t.desiredStatus === 'STOPPED' && t.lastStatus !== 'STOPPED') return 'stopping';
  switch (t.lastStatus) {
    case 'PROVISIONING':
    case 'PENDING':
    case 'ACTIVATING':
      return 'pending';
    case 'RUNNING':
      return 'running';
    case 'DEACTIVATING':
    case 'STOPPING':
    case 'DEPROVISIONING':
      return 'stopping';
    case 'STOPPED':
    case 'DELETED':
      return 'terminated';
    default:
      log?.warn({ task: t.taskArn, lastStatus: t.lastStatus }, 'ECS task status not understood');
      return 'unknown';
  }
}

/** The task's private address on its ENI (awsvpc), once attached. */
export function privateAddress(t: Task): string | undefined {
  for (const a of t.attachments ?? []) {
    if (a.type !== 'ElasticNetworkInterface') continue;
    const ip = a.details?.find((d) => d.name === 'privateIPv4Address')?.value;
    if (ip) return ip;
  }
  return undefined;
}

/** Why a task stopped, in one line for a trace: stop code, ECS's reason, and the containers' exit codes. */
export function stopDescription(t: Task): string {
  const parts = [`task stopped (${t.stopCode ?? 'no stop code'}): ${t.stoppedReason ?? 'no reason given'}`];
  for (const c of t.containers ?? []) {
    if (c.exitCode === undefined && !c.reason) continue;
    parts.push(`container ${c.name}${c.exitCode !== undefined ? ` exited ${c.exitCode}` : ''}${c.reason ? `: ${c.reason}` : ''}`);
  }
  return parts.join('; ');
}

/** The error a stopped task is to the fleet: a pull that failed fails the job at once (image_pull_failure);
 *  a spot interruption or a start that failed for a passing reason is worth another task; the rest is lost. */
export function stopError(t: Task): Error {
  const text = stopDescription(t);
  const all = [t.stoppedReason ?? '', ...(t.containers ?? []).map((c) => c.reason ?? '')].join(' ');
  if (/CannotPullContainerError|pull image manifest|image.*not found/i.test(all)) return new ImagePullError(text);
  if (t.stopCode === 'SpotInterruption') return new RetryableError(text);
  if (/ResourceInitializationError|CannotStartContainerError|TaskFailedToStart/i.test(`${t.stopCode ?? ''} ${all}`)) {
    return /InvalidParameter|AccessDenied|not authorized/i.test(all) ? new PermanentError(text) : new RetryableError(text);
  }
  return new MachineLostError(text);
}
