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

/**
 * What the coordinator last said a machine is doing, kept with the machine itself (EC2 tags, a local
 * machine's machine.json) so that a successor can tell idle machines from busy ones. Never a secret: a
 * state and a GitLab job id. A machine nobody labelled yet (booting, or launched for a job and not yet
 * labelled) has none.
 */
export type MachineLabels = { state: 'idle' } | { state: 'busy'; job: string };

const JOB_ID = /^[0-9]{1,20}$/;

/** Labels from their stored form (state and job as strings, `''` = no job); undefined when absent or not
 *  understood (an unknown state, busy without a job id): a successor then checks the machine itself. */
export function machineLabelsOf(state: string | undefined, job: string | undefined): MachineLabels | undefined {
  if (state === 'idle') return { state: 'idle' };
  if (state === 'busy' && job !== undefined && JOB_ID.test(job)) return { state: 'busy', job };
  return undefined;
}

/** A label the provider may store: a GitLab job id is digits. Throws otherwise (a caller's bug). */
export function checkMachineLabels(labels: MachineLabels): void {
  // The value is not repeated: whatever was passed by mistake stays out of logs.
  if (labels.state === 'busy' && !JOB_ID.test(labels.job)) throw new Error(`a busy machine's job label must be a GitLab job id (digits); ${labels.job.length} characters given`);
}

export interface Machine {
  id: string;
  executor: string;
  state: MachineState;
  createdAt: number; // ms epoch
  tags: OwnershipTags;
  connection?: ConnectionInfo;
  /** Its last labels (see `CapacityProvider.label`); absent when it has none or the provider keeps none. */
  labels?: MachineLabels;
  /** Set when this process can never connect to it, with why (e.g. its key tags are missing or were not
   *  written by this deployment): adopting it is pointless, garbage collection may remove it. */
  unreachable?: string;
}

export interface CreateResult {
  machines: Machine[];
  errors: Error[]; // partial success: what failed, without throwing
}

/** Per-call choices for `create`. `market: 'on-demand'` asks for capacity the cloud will not take back
 *  (EC2: no spot), e.g. to run again a job whose spot machine was interrupted; providers without markets
 *  ignore it. */
export interface CreateOptions {
  market?: 'on-demand';
  /** What the machine is made of, for providers that build one per job (fargate: a task from the job's own
   *  image); providers whose machines are the same for every job (local, ec2) ignore it. */
  task?: TaskRequest;
}

/** A job's own machine: its image as written in `image:` (expanded), and its size when the job asks for one
 *  (FLEETRUNNER_CPU / FLEETRUNNER_MEMORY). The provider checks the size against its bounds and the cloud's
 *  valid combinations and refuses what it cannot build with a PermanentError naming why. */
export interface TaskRequest {
  image?: string;
  /** CPU units (1024 = one vCPU). */
  cpuUnits?: number;
  memoryMiB?: number;
  /** Service images (`services:`), which a provider without sidecars refuses. */
  services?: readonly string[];
}

/**
 * Carries out what the fleet decided. Knows nothing of jobs.
 * Contracts: `create` tags at launch; `list` sees only machines carrying `tags` (of any coordinator when
 * `coordinator` is omitted); `terminate` is idempotent (not-found is success); capacity failures surface
 * as InsufficientCapacityError in `errors`.
 */
export interface CapacityProvider {
  readonly name: string;
  create(count: number, tags: OwnershipTags, opts?: CreateOptions): Promise<CreateResult>;
  list(tags: Partial<OwnershipTags> & Pick<OwnershipTags, 'fleet'>): Promise<Machine[]>;
  /** Resolves once the machine answers SSH (bounded by the provider's boot timeout), with connection info. */
  waitReady(machine: Machine, signal?: AbortSignal): Promise<ConnectionInfo>;
  terminate(ids: string[]): Promise<{ errors: Error[] }>;
  /**
   * Stores `labels` with the machine, replacing the previous ones; `list` reports them, to this process and
   * to a successor. Optional: a provider without it keeps no labels. Rejects when they could not be stored
   * (NotFoundError when the machine is gone).
   */
  label?(id: string, labels: MachineLabels): Promise<void>;
  /** Stops background work (no resources are deleted here). */
  shutdown(): Promise<void>;
}
