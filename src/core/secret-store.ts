// One secret that must outlive the coordinator's task: today the runner token GitLab rotated. A Fargate task
// starts with an empty disk, so on ECS it lives in a store the task role reaches (SSM Parameter Store,
// SecureString); on a host that is never replaced a mode-600 file under stateDir does.

export interface SecretStore {
  /** Where the secret lives, for log lines and errors ("ssm:/fleetrunner/prod/runner-token"); never the value. */
  readonly where: string;
  /** The stored value; undefined when nothing was stored yet. Throws when the store cannot be read. */
  get(): Promise<string | undefined>;
  /** Replaces the stored value. Throws when the store refuses or cannot be reached. */
  put(value: string): Promise<void>;
  /** Removes the value (a legacy runner unregistered at stop). Not-found is success. */
  delete(): Promise<void>;
}
