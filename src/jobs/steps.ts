// The user's stages: step_script and the other steps in payload order, and after_script.

import type { JobPayload, JobStep } from '../core/index.js';
import { UnsupportedJobError } from './errors.js';
import type { ShellWriter } from './writer.js';

export const AFTER_SCRIPT = 'after_script';

/** Rejects payloads whose job script this plan cannot run (GitLab: runner_system_failure). */
export function checkSteps(job: JobPayload): void {
  if (job.run !== undefined) {
    throw new UnsupportedJobError('this job uses `run:` (CI steps), which fleetrunner does not support; use `script:`');
  }
  for (const step of job.steps) {
    if (!/^[A-Za-z0-9_]+$/.test(step.name)) {
      throw new UnsupportedJobError(`unsupported step name ${JSON.stringify(step.name)}`);
    }
  }
}

/** step_script first (GitLab runs it first whatever the payload order), then the others in order. */
export function userSteps(job: JobPayload): JobStep[] {
  const steps = job.steps.filter((s) => s.name !== AFTER_SCRIPT);
  return [...steps.filter((s) => s.name === 'script'), ...steps.filter((s) => s.name !== 'script')];
}

export function afterScriptStep(job: JobPayload): JobStep | undefined {
  const s = job.steps.find((step) => step.name === AFTER_SCRIPT);
  return s !== undefined && s.script.some((line) => line.trim() !== '') ? s : undefined;
}

export function stageNameOf(step: JobStep): string {
  return `step_${step.name}`;
}

export function writeCommands(w: ShellWriter, commands: readonly string[]): void {
  for (const c of commands) w.userCommand(c);
}
