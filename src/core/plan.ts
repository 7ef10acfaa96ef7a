// A job turned into stage scripts (built by jobs/, run by executors/). docs/gitlab-protocol.md §6.1.

import type { JobStatusForAfterScript } from './outcome.js';

export type StagePhase = 'predefined' | 'user' | 'after';

export interface Stage {
  /** GitLab's stage name: get_sources, step_script, after_script, upload_artifacts_on_success, … */
  name: string;
  phase: StagePhase;
  /** A complete bash script, fed to `bash` on stdin; its exit status is the stage's result. */
  script: string;
}

export interface JobPlan {
  /** Directory of the project checkout on the machine ($CI_PROJECT_DIR). */
  projectDir: string;
  /** Runs first, in order. A failure here skips user stages AND after_script (GitLab's rule). */
  prepare: Stage[];
  /** step_script, then other steps in payload order; stops at the first failure. */
  user: Stage[];
  /** after_script for a given CI_JOB_STATUS, or undefined when the job has none. */
  after?: (status: JobStatusForAfterScript) => Stage;
  afterScriptTimeoutMs: number;
  /** Cache archive + artifact upload when the job (prepare + user) succeeded. */
  onSuccess: Stage[];
  /** The same for failure (incl. cancel/timeout). */
  onFailure: Stage[];
  /** Always last: deletes file variables, credentials, temp dir. */
  cleanup: Stage;
  /** Job deadline from runner_info.timeout (0 → 7200 s). */
  jobTimeoutMs: number;
  /** Bound for user stages only (RUNNER_SCRIPT_TIMEOUT), when set. */
  scriptTimeoutMs?: number;
}
