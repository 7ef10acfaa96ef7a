// JobPayload → JobPlan: one bash script per GitLab stage (docs/gitlab-protocol.md §6.1), in GitLab's order and names.

import type { JobPayload, JobPlan, JobStatusForAfterScript, Stage, StagePhase } from '../core/index.js';
import { artifactsFor, checkArtifacts, dependenciesToDownload, writeDownloadArtifacts, writeUploadArtifacts } from './artifacts.js';
import { cacheEntries } from './cache-keys.js';
import { checkCacheStore, needsArchive, needsRestore, writeArchiveCache, writeRestoreCache } from './cache.js';
import type { PlanContext } from './context.js';
import { projectDirs, type ProjectDirs } from './dirs.js';
import { parseGoDuration } from './duration.js';
import { submoduleStrategy, writeGetSources } from './git.js';
import { writeEnvironment } from './preamble.js';
import { op } from './quote.js';
import { afterScriptStep, checkSteps, stageNameOf, userSteps, writeCommands } from './steps.js';
import { collectVariables, isGoTrue, jobTimeoutSeconds, variableSet, type StageStatus, type VariableSet } from './variables.js';
import { ShellWriter } from './writer.js';

export const DEFAULT_AFTER_SCRIPT_TIMEOUT_MS = 5 * 60_000;

/** Features (GitLab `info.features`) that these scripts implement. */
export const PLAN_FEATURES = [
  'variables',
  'artifacts',
  'upload_multiple_artifacts',
  'upload_raw_artifacts',
  'cache',
  'fallback_cache_keys',
  'refspecs',
  'raw_variables',
  'artifacts_exclude',
  'multi_build_steps',
  'return_exit_code',
] as const;

interface Builder {
  job: JobPayload;
  ctx: PlanContext;
  dirs: ProjectDirs;
  debugTrace: boolean;
  exitCodeCheck: boolean;
  varsFor(status: StageStatus): VariableSet;
}

function stage(
  b: Builder,
  name: string,
  phase: StagePhase,
  header: string,
  write: (w: ShellWriter) => void,
  ignoreErrors = false,
): Stage {
  // User stages may run in a job image without bash (docker style): they stay POSIX sh.
  const portable = phase !== 'predefined';
  const render = (): string => {
    const w = new ShellWriter(b.exitCodeCheck);
    write(w);
    return w.finish({ section: { name, header }, debugTrace: b.debugTrace, ignoreErrors, portable });
  };
  // Rendered once now, so a job that cannot be turned into scripts fails while it is planned, and again
  // when the stage is launched: a running job keeps no copy of its scripts (each carries the job's
  // variables; a few KiB per stage, per job, for the job's whole run).
  render();
  return {
    name,
    phase,
    get script() {
      return render();
    },
  };
}

/** A stage that works with the job's environment: variables exported first. */
function envStage(
  b: Builder,
  status: StageStatus,
  name: string,
  phase: StagePhase,
  header: string,
  write: (w: ShellWriter, vars: VariableSet) => void,
  ignoreErrors = false,
): Stage {
  return stage(
    b,
    name,
    phase,
    header,
    (w) => {
      const vars = b.varsFor(status);
      writeEnvironment(w, vars.list, b.dirs);
      write(w, vars);
    },
    ignoreErrors,
  );
}

function prepareStages(b: Builder): Stage[] {
  const { job, ctx, dirs } = b;
  const stages: Stage[] = [
    stage(b, 'prepare_script', 'predefined', 'Preparing environment', (w) => {
      w.printf('Running on %s via %s...\\n', op('"$HOSTNAME"'), ctx.runner.executorName);
      w.mkdirPrivate(dirs.tmpDir);
    }),
    envStage(b, 'running', 'get_sources', 'predefined', 'Getting source from Git repository', (w, vars) =>
      writeGetSources(w, {
        job,
        vars,
        dirs,
        writeHook: (hookName) => writeCommands(w, job.hooks.find((h) => h.name === hookName)?.script ?? []),
      }),
    ),
  ];
  if (needsRestore(job, b.varsFor('running'))) {
    stages.push(
      envStage(b, 'running', 'restore_cache', 'predefined', 'Restoring cache', (w, vars) =>
        writeRestoreCache(w, job, ctx, vars, dirs),
      ),
    );
  }
  if (dependenciesToDownload(job).length > 0) {
    stages.push(
      envStage(b, 'running', 'download_artifacts', 'predefined', 'Downloading artifacts', (w) =>
        writeDownloadArtifacts(w, job, ctx, dirs),
      ),
    );
  }
  return stages;
}

function finalStages(b: Builder, outcome: 'success' | 'failure'): Stage[] {
  const { job, ctx, dirs } = b;
  const status = outcome === 'success' ? 'success' : 'failed';
  const stages: Stage[] = [];
  if (needsArchive(job, b.varsFor(status), outcome)) {
    const name = outcome === 'success' ? 'archive_cache' : 'archive_cache_on_failure';
    const header = outcome === 'success' ? 'Saving cache for successful job' : 'Saving cache for failed job';
    stages.push(
      envStage(b, status, name, 'predefined', header, (w, vars) => writeArchiveCache(w, job, ctx, vars, dirs, outcome)),
    );
  }
  if (artifactsFor(job, outcome).length > 0) {
    const name = outcome === 'success' ? 'upload_artifacts_on_success' : 'upload_artifacts_on_failure';
    const header = outcome === 'success' ? 'Uploading artifacts for successful job' : 'Uploading artifacts for failed job';
    stages.push(
      envStage(b, status, name, 'predefined', header, (w, vars) =>
        writeUploadArtifacts(w, job, ctx, vars, dirs, outcome),
      ),
    );
  }
  return stages;
}

function positive(ms: number | undefined): number | undefined {
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/**
 * Builds every stage script for `job`. Throws UnsupportedJobError when the payload asks for something
 * these scripts cannot do (`run:` steps, an unknown submodule strategy or artifact format, …).
 */
export function buildPlan(job: JobPayload, ctx: PlanContext): JobPlan {
  checkSteps(job);
  checkArtifacts(job);
  checkCacheStore(ctx);

  const dirs = projectDirs(job, ctx);
  const varsFor = (status: StageStatus): VariableSet => variableSet(collectVariables(job, ctx, dirs, status));
  const running = varsFor('running');
  submoduleStrategy(running); // fail the plan, not get_sources, on an unknown value
  cacheEntries(job, running); // the same for an unknown cache policy
  const b: Builder = {
    job,
    ctx,
    dirs,
    debugTrace: isGoTrue(running.get('CI_DEBUG_TRACE')),
    exitCodeCheck: running.bool('FF_ENABLE_BASH_EXIT_CODE_CHECK') === true,
    varsFor,
  };

  const user = userSteps(job).map((step) =>
    envStage(b, 'running', stageNameOf(step), 'user', `Executing "${stageNameOf(step)}" stage of the job script`, (w) => {
      w.cd(dirs.projectDir);
      writeCommands(w, step.script);
    }),
  );

  const afterStep = afterScriptStep(job);
  const ignoreAfterErrors = running.bool('AFTER_SCRIPT_IGNORE_ERRORS') !== false;
  const after =
    afterStep === undefined
      ? undefined
      : (status: JobStatusForAfterScript): Stage =>
          envStage(
            b,
            status,
            'after_script',
            'after',
            'Running after_script',
            (w) => {
              w.cd(dirs.projectDir);
              w.notice('Running after script...');
              writeCommands(w, afterStep.script);
            },
            ignoreAfterErrors,
          );

  const cleanup = stage(b, 'cleanup_file_variables', 'predefined', 'Cleaning up project directory and file based variables', (w) =>
    w.rmTree(dirs.tmpDir),
  );

  const plan: JobPlan = {
    projectDir: dirs.projectDir,
    prepare: prepareStages(b),
    user,
    afterScriptTimeoutMs:
      positive(parseGoDuration(running.get('RUNNER_AFTER_SCRIPT_TIMEOUT') ?? '')) ??
      ctx.afterScriptTimeoutMs ??
      DEFAULT_AFTER_SCRIPT_TIMEOUT_MS,
    onSuccess: finalStages(b, 'success'),
    onFailure: finalStages(b, 'failure'),
    cleanup,
    jobTimeoutMs: jobTimeoutSeconds(job) * 1000,
  };
  if (after !== undefined) plan.after = after;
  const scriptTimeout = positive(parseGoDuration(running.get('RUNNER_SCRIPT_TIMEOUT') ?? ''));
  if (scriptTimeout !== undefined) plan.scriptTimeoutMs = scriptTimeout;
  return plan;
}
