// Machines as the fleet sees them. Providers map their cloud's statuses onto this closed set in one switch.

export type MachineState =
  | 'pending' // asked for, not yet running
  | 'running' // running; may not answer SSH yet
  | 'stopping' // on its way out
  | 'terminated' // gone
  | 'unknown'; // a status the provider could not map: logged, never guessed

/** How an executor reaches a machine. Host keys are known in advance: no trust on first use. */
export interface ConnectionInfo {
  host: string;
  port: number;
  username: string;
  /** OpenSSH private key the coordinator generated for this machine. Never logged. */
  privateKey: string;
  /** The machine's expected host public key, OpenSSH one-line form ("ssh-ed25519 AAAA…"). */
  hostPublicKey: string;
  /** Directory on the machine under which job workspaces live. */
  buildsDir: string;
  /** Directory on the machine for the local cache (kept while the machine lives). */
  cacheDir: string;
  /** Directory on the machine for fleetrunner's own records, private to the login user: the running job's
   *  state, its stages' output and exit files, the coordinator's heartbeat, an interruption notice. What a
   *  replacement coordinator reads back after the one that started the job is gone. */
  stateDir: string;
}

/** Ownership tags written on every resource at creation; listing by them rebuilds the fleet. */
export interface OwnershipTags {
  fleet: string;
  executor: string;
  coordinator: string;
}

export interface Machine {
  id: string;
  executor: string;
  state: MachineState;
  createdAt: number; // ms epoch
  tags: OwnershipTags;
  connection?: ConnectionInfo;
}

export interface CreateResult {
  machines: Machine[];
  errors: Error[]; // partial success: what failed, without throwing
}

/**
 * Carries out what the fleet decided. Knows nothing of jobs.
 * Contracts: `create` tags at launch; `list` sees only machines carrying `tags` (of any coordinator when
 * `coordinator` is omitted); `terminate` is idempotent (not-found is success); capacity failures surface
 * as InsufficientCapacityError in `errors`.
 */
export interface CapacityProvider {
  readonly name: string;
  create(count: number, tags: OwnershipTags): Promise<CreateResult>;
  list(tags: Partial<OwnershipTags> & Pick<OwnershipTags, 'fleet'>): Promise<Machine[]>;
  /** Resolves once the machine answers SSH (bounded by the provider's boot timeout), with connection info. */
  waitReady(machine: Machine, signal?: AbortSignal): Promise<ConnectionInfo>;
  terminate(ids: string[]): Promise<{ errors: Error[] }>;
  /** Stops background work (no resources are deleted here). */
  shutdown(): Promise<void>;
}
