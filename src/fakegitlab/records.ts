// Internal mutable records of the fake. Views handed to tests are copies (see ci-state.ts jobView).
import type { TraceStore } from './trace-store.js';
import type { RailsJobPayload } from './rails-payload.js';
import type {
  JobSpec,
  JobState,
  JobUpdateRecord,
  StoredArtifact,
  TracePatchRecord,
} from './types.js';

export interface ManagerRecord {
  systemId: string;
  features: Record<string, unknown>;
  contactedAt: number;
}

export interface RunnerRecord {
  id: number;
  token: string;
  kind: 'authentication' | 'legacy';
  /** null when created without one (Rails: CI_RUNNER_DESCRIPTION is then sent as null). */
  description: string | null;
  /** runner_info.uuid. */
  uuid: string;
  issuedAt: number;
  tokenExpiresAt?: number;
  paused: boolean;
  maximumTimeout?: number;
  managers: Map<string, ManagerRecord>;
  /** Rails' runner queue value: changes whenever a job becomes pending. */
  queueValue: string;
  tags: string[];
  runUntagged: boolean;
}

/** Per runner-token polling history, for checks 2, 5 and 6. */
export interface PollState {
  /** Each distinct X-GitLab-Last-Update value sent, with when it became the latest, how many answers this
   *  token had been given by then, and when a request carrying it (or a newer one) first arrived (check 2). */
  lastUpdates: Array<{ value: string; since: number; answersBefore?: number; carriedAt?: number }>;
  /** Answers (201 and 204) given to this token's job requests. */
  answers?: number;
  last204At?: number;
  last204WasLongPoll: boolean;
  consecutive403: number;
  last403At?: number;
}

export interface ProjectRecord {
  id: number;
  path: string;
  name: string;
  namespace: string;
  bareDir: string;
  defaultBranch: string;
  commitCount: number;
  /** CI_PROJECT_DESCRIPTION; unset → null, as Rails sends it for a project without a description. */
  description?: string;
}

export interface PipelineRecord {
  id: number;
  projectId: number;
  ref: string;
  refType: 'branch' | 'tag';
  sha: string;
  beforeSha: string;
  commitMessage: string;
  stages: string[];
  jobIds: number[];
  createdAt: number;
  /** `workflow:name` (CI_PIPELINE_NAME); unset → null. */
  name?: string;
}

export interface UploadAttempts {
  statuses: number[];
}

export interface JobRecord {
  id: number;
  name: string;
  stage: string;
  stageIndex: number;
  pipelineId: number;
  projectId: number;
  spec: JobSpec;
  token: string;
  dependencyIds: number[];
  state: JobState;
  failureReason?: string;
  exitCode?: number;
  queuedAt?: number;
  startedAt?: number;
  finishedAt?: number;

  // Assignment
  runnerId?: number;
  /** Its runner re-verified (a new process) since the last PATCH: the first PATCH may miss the offset and
   *  learn it from the 416, which is how Rails lets a runner resume. */
  offsetUnknown?: boolean;
  systemId?: string;
  features: Record<string, unknown>;
  cancelGracefully: boolean;
  /** Two-phase commit: assigned but waiting for PUT state=running. */
  awaitingAck: boolean;
  payload?: RailsJobPayload;
  /** Served with a non-JSON Content-Type by fault injection: the runner must reject it (check 4). */
  servedNonJson: boolean;

  // Protocol bookkeeping
  acked: boolean; // check 7
  /** The stored trace as one Buffer (made on demand from traceStore). */
  trace: Buffer;
  traceStore: TraceStore;
  debugTrace: boolean;
  expectedNextOffset: number; // checks 11, 12
  intervalS: number; // last X-GitLab-Trace-Update-Interval sent
  lastContactAt?: number; // last successful PATCH/PUT, check 14
  final202At?: number; // check 18
  final202IntervalS?: number;
  final200At?: number; // check 18: no traffic after
  abortedAt?: number; // check 20
  patchesAfterAbort: number;
  putsAfterAbort: number;
  secretsReported: Set<string>; // check 24, once per secret
  downloads: Map<number, number>; // dependency id → GET count, check 28
  uploadAttempts: Map<string, UploadAttempts>; // artifact type → statuses, check 27

  updates: JobUpdateRecord[];
  patches: TracePatchRecord[];
  artifacts: StoredArtifact[];
}
