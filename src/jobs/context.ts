// What buildPlan needs besides the payload: where things live on the machine and who the runner is.

/** Where caches are kept. `local` archives to `<cacheDir>/<project id>/<key>/cache.zip` on the machine
 *  (a pooled machine keeps it between jobs). A remote store (S3 through presigned URLs handed over per key)
 *  is meant to join this union as another `kind`. */
export type CacheStore = { kind: 'local' };

export interface RunnerIdentity {
  version: string;
  revision: string;
  /** First 8 characters of the runner token (GitLab's short token); also part of shared build paths. */
  shortToken: string;
  /** The executor's configured name, shown in "Running on … via …". */
  executorName: string;
  /** Slot index of this job on its machine; separates concurrent checkouts of one project. */
  concurrentId: number;
  /** GOOS-style platform and GOARCH-style arch for CI_RUNNER_EXECUTABLE_ARCH, e.g. linux / amd64. */
  platform: string;
  arch: string;
}

export interface PlanContext {
  /** Absolute builds root on the machine, e.g. /home/fr/builds. */
  buildsDir: string;
  /** Absolute root of the local cache store on the machine. */
  cacheDir: string;
  /** Defaults to `{ kind: 'local' }`. */
  cacheStore?: CacheStore;
  /** GitLab base URL as the MACHINE reaches it (artifact upload/download), without a trailing slash. */
  gitlabUrl: string;
  runner: RunnerIdentity;
  /** Runner config `environment` (KEY → value), added before the job's variables. */
  environment?: Record<string, string>;
  /** true: CI_SHARED_ENVIRONMENT=true and builds under <shortToken>/<concurrentId>/ (machine reused);
   *  false: CI_DISPOSABLE_ENVIRONMENT=true and builds directly under buildsDir. */
  sharedEnvironment: boolean;
  /** Default after_script bound when RUNNER_AFTER_SCRIPT_TIMEOUT is unset; 5 min if omitted. */
  afterScriptTimeoutMs?: number;
}
