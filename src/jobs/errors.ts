// The one error buildPlan throws: the payload asks for something this plan cannot do. The runner reports it
// in the trace and fails the job as runner_system_failure (GitLab does the same for unsupported options).

import { FleetError } from '../core/index.js';

export class UnsupportedJobError extends FleetError {}

export const isUnsupportedJob = (e: unknown): e is UnsupportedJobError => e instanceof UnsupportedJobError;
