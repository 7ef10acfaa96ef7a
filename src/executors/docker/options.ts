// The executor's Docker settings. Structurally the compiled config's DockerStyleConfig (the composition
// root passes `executor.docker` as is); declared here so executors/ does not import config/.

export type PullPolicy = 'always' | 'if-not-present' | 'never';

export interface DockerStyleSettings {
  /** Image for jobs that name none. */
  defaultImage: string;
  /** Used when the job gives no `pull_policy`. */
  pullPolicy: PullPolicy;
  allowedPullPolicies: readonly PullPolicy[];
  /** "/path" → a volume of the job's own (removed at the end); "host:container[:ro]" → bind mount. */
  volumes: readonly string[];
  cpus?: string;
  memory?: string;
  /** "host:ip" entries for --add-host (build and service containers). */
  extraHosts: readonly string[];
  /** Mount the machine's Docker socket into the build container (instead of a docker:dind service). */
  hostDockerSocket: boolean;
  servicesPrivileged: boolean;
  waitForServicesTimeoutMs: number;
}

/** A registry login handed to Docker for one job: never in argv, removed at the end. */
export interface RegistryLogin {
  registry: string;
  username: string;
  password: string;
}
