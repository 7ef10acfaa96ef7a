// What buildPlan needs besides the payload: where things live on the machine and who the runner is.

/** URLs for one cache key: `get` to restore it, `put` to archive it. A missing URL means that direction
 *  is skipped for the key (with a warning in the job log). */
export interface PresignedCacheUrls {
  get?: string;
  put?: string;
}

/** Where caches are kept.
 *  - `local`: `<cacheDir>/<project id>/<key>/cache.zip` on the machine (a pooled machine keeps it).
 *  - `presigned`: a remote store (S3) that the machine reaches only through URLs presigned by the
 *    coordinator, keyed by the expanded cache key (see `cacheRequest`). The URLs carry credentials: the
 *    scripts hand them to curl through a mode-600 config file, never on a command line, and print only
 *    scheme://host/path. `expiresAt` (ms since the epoch) is when the URLs stop working. */
export type CacheStore =
  | { kind: 'local' }
  | { kind: 'presigned'; entries: Readonly<Record<string, PresignedCacheUrls>>; expiresAt?: number };

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
