// A successor coordinator takes over its predecessor's machines (same deployment: the coordinator tag is
// the same for every task). Each running machine is read back (stateDir/jobs on it):
// - a job still running or not yet delivered → adopted as busy, the job continued beside the loop
//   (JobRun with `continued`: the session resumes from the machine's records, the trace from its checkpoint);
// - no job → adopted into the idle pool, not rebooted;
// - unreadable (no answer, several job records, a record that does not parse), or an executor style that
//   cannot read jobs back → removed, with the reason in the log.
// Runs after the lease and before start-up garbage collection, which then removes only what is left.

import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Machine } from '../core/machine.js';
import { canReattach } from './continued-job.js';
import type { Coordinator, CoordinatorExecutor } from './coordinator.js';

export interface Takeover {
  /** Jobs continued from their machines (their journal entries, if any, are not recovery's). */
  jobs: number[];
  idle: number;
  removed: number;
}

export async function takeOverMachines(o: { executors: readonly CoordinatorExecutor[]; coordinator: Coordinator; logger: Logger }): Promise<Takeover> {
  const result: Takeover = { jobs: [], idle: 0, removed: 0 };
  await Promise.all(
    o.executors.map(async (e) => {
      let machines: Machine[];
      try {
        machines = await e.fleet.owned();
      } catch (err) {
        o.logger.warn({ executor: e.name, err: errorMessage(err) }, 'could not list machines to adopt; garbage collection decides about them');
        return;
      }
      await Promise.all(machines.map((m) => takeOver(e, m, o, result)));
    }),
  );
  if (result.jobs.length + result.idle + result.removed > 0) o.logger.info({ ...result }, 'took over the machines of the previous coordinator');
  return result;
}

async function takeOver(e: CoordinatorExecutor, m: Machine, o: { coordinator: Coordinator; logger: Logger }, result: Takeover): Promise<void> {
  // Still booting or on its way out: garbage collection decides.
  if (m.state !== 'running' || !m.connection) return;
  const connection = m.connection;
  try {
    if (!canReattach(e.executor)) {
      await e.fleet.discard(m, `the ${e.executor.style} style cannot read jobs back from a machine`);
      result.removed++;
      return;
    }
    const found = await e.executor.inspect(connection);
    switch (found.kind) {
      case 'idle':
        if (!e.fleet.adopt(m, connection, 'idle')) return;
        await e.fleet.adoptionSettled(m.id);
        result.idle++;
        return;
      case 'job': {
        const { record } = found;
        // Refused (the fleet already holds it, or is shutting down): not ours to continue.
        if (!e.fleet.adopt(m, connection, 'busy')) return;
        o.coordinator.continueJob(e.name, record.job, { machine: m, connection, record, reattacher: e.executor });
        o.logger.info({ executor: e.name, machine: m.id, job: record.job.id, checkpoint: record.checkpoint }, 'continuing a job found on its machine');
        result.jobs.push(record.job.id);
        return;
      }
      case 'unreadable':
        await e.fleet.discard(m, `its records cannot be read: ${found.reason}`);
        result.removed++;
        return;
    }
  } catch (err) {
    o.logger.warn({ executor: e.name, machine: m.id, err: errorMessage(err) }, 'could not take over a machine');
  }
}
