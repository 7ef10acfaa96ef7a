// The machine of a job whose result is being delivered. Its records on the machine are the result's durable
// copy (a Fargate task's disk is not), so the machine stays the job's until GitLab has taken the result:
// then its records go (Reattacher.forget) and it is released. Not delivered (a shutdown cut the delivery
// short): the machine keeps the records and stays as it is, so a successor finds the ended job on it and
// delivers the result.

import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ConnectionInfo, Machine } from '../core/machine.js';
import type { ReleaseOptions } from '../fleet/fleet-api.js';
import { canReattach } from './continued-job.js';
import type { ExecutorRuntime } from './job-run.js';

export interface HeldMachine {
  runtime: ExecutorRuntime;
  machine: Machine;
  connection: ConnectionInfo;
  release: ReleaseOptions;
}

export async function settleHeldMachine(held: HeldMachine, jobId: number, delivered: boolean, log: Logger): Promise<void> {
  if (!delivered) {
    log.info({ machine: held.machine.id }, "result not delivered yet: the machine keeps the job's records for a successor");
    return;
  }
  let release = held.release;
  if (canReattach(held.runtime.executor)) {
    await held.runtime.executor.forget(held.connection, jobId).catch((e: unknown) => {
      log.warn({ machine: held.machine.id, err: errorMessage(e) }, "could not remove the job's records from its machine");
      release = { reusable: false, reason: 'unclean' };
    });
  }
  await held.runtime.fleet.release(held.machine, release);
}
