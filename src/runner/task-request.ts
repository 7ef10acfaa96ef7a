// What a job asks of an executor that builds its machine from the job (fargate): its image as written in
// `image:` and its services (expanded, as routing sees them), and its size from FLEETRUNNER_CPU /
// FLEETRUNNER_MEMORY. A size that does not parse, is outside the executor's bounds or is not one Fargate
// offers, and services (which the fargate executor does not run), are the job's own mistakes: told in its
// trace before any machine is asked for (runner_configuration_error). The provider checks again.

import { decideTaskSize } from '../core/fargate-task-size.js';
import type { JobPayload } from '../core/job.js';
import type { FargateProviderConfig } from '../core/provider-config.js';
import type { TaskRequest } from '../core/machine.js';
import { expandedImageNames } from '../jobs/containers.js';
import { taskSizeFromVariables } from '../jobs/task-size.js';

export type TaskRequestDecision = { ok: true; task: TaskRequest } | { ok: false; reason: string };

export function taskRequestFor(job: JobPayload, c: Pick<FargateProviderConfig, 'cpu' | 'memoryMiB'>): TaskRequestDecision {
  const size = taskSizeFromVariables(job.variables);
  if (!size.ok) return { ok: false, reason: size.reason };
  const fits = decideTaskSize(size, c);
  if (!fits.ok) return { ok: false, reason: `invalid FLEETRUNNER_CPU / FLEETRUNNER_MEMORY: ${fits.reason}` };
  const names = expandedImageNames(job);
  if (names.services.length > 0) {
    return { ok: false, reason: `this executor runs each job as one Fargate task and runs no services (${names.services.join(', ')}): route jobs with services: to an executor with style: docker` };
  }
  return {
    ok: true,
    task: {
      ...(names.image ? { image: names.image } : {}),
      ...(size.cpuUnits !== undefined && { cpuUnits: size.cpuUnits }),
      ...(size.memoryMiB !== undefined && { memoryMiB: size.memoryMiB }),
      ...(names.services.length > 0 && { services: names.services }),
    },
  };
}
