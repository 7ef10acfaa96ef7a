// Shapes of the runner API calls (docs/gitlab-protocol.md §1–§4), in our vocabulary: camelCase, times in ms since epoch.

import type { JobPayload } from '../core/job.js';
import type { RunnerInfo } from './info.js';

export interface CallOptions {
  signal?: AbortSignal;
}

export interface VerifyResult {
  /** Runner id, when GitLab sent the JSON form. */
  id?: number;
  /** The token to use from now on (GitLab echoes it; ours when it did not). */
  token: string;
  /** When the token stops working, if it expires. */
  tokenExpiresAt?: number;
  /** GitLab answered the old plain-text 200: alive, but nothing else is known. */
  legacyResponse: boolean;
}

export interface RegisterParams {
  description?: string;
  maintenanceNote?: string;
  /** Sent as GitLab's comma-separated `tag_list`. */
  tags?: string[];
  runUntagged?: boolean;
  locked?: boolean;
  accessLevel?: 'not_protected' | 'ref_protected';
  maximumTimeoutSec?: number;
  paused?: boolean;
  info: RunnerInfo;
}

export interface IssuedToken {
  token: string;
  tokenExpiresAt?: number;
}

export interface RegisteredRunner extends IssuedToken {
  id?: number;
}

export interface JobRequestParams extends CallOptions {
  token: string;
  systemId: string;
  info: RunnerInfo;
  /** Long-poll cursor; the client's LastUpdateStore value is used when omitted. */
  lastUpdate?: string;
  /** Session server (web terminal) details, only when one runs. */
  session?: { url: string; certificate: string; authorization: string };
  /** Overrides the long-poll timeout for this call. */
  timeoutMs?: number;
}

export type JobRequestResult =
  /** 201: a job is ours; acknowledge it at once (JobTraceSession.acknowledge). `unreadable`: the body named
   *  the job but could not be read (each problem with its field path); `job` is then only a stand-in
   *  (jobStub) for failing it. */
  | { kind: 'job'; job: JobPayload; unreadable?: string[]; lastUpdate?: string }
  /** 204: nothing to do. `longPolled` when Workhorse held the request (`Gitlab-Ci-Builds-Polling: yes`). */
  | { kind: 'none'; lastUpdate?: string; longPolled: boolean }
  /** 403: bad, expired or unknown token; feed RunnerHealth. */
  | { kind: 'forbidden' }
  /** 409 (conflict, lagging replica: try again), 503 (instance unavailable), anything else (422 orphaned,
   *  429 after retries, non-JSON 201, no answer: status 0). */
  | { kind: 'conflict' | 'unavailable' | 'error'; status: number; message: string };

export type JobState = 'pending' | 'running' | 'success' | 'failed';

export interface UpdateJobBody {
  state: JobState;
  failure_reason?: string;
  /** Omitted when 0. */
  exit_code?: number;
  /** Deprecated copy of output.checksum that GitLab still reads. */
  checksum?: string;
  output?: { checksum: string; bytesize: number };
  info?: RunnerInfo;
  runtime_environment_key?: string;
}

/** What GitLab says about a job on PUT and PATCH answers (docs/gitlab-protocol.md §3.2, §3.3). */
export interface JobStateResponse {
  /** HTTP status, or 0 when no answer came. */
  status: number;
  /** `Job-Status` header, lower-cased: running | canceling | canceled | failed | success | … */
  jobStatus?: string;
  /** `X-GitLab-Trace-Update-Interval` in seconds, when present and a positive integer. */
  updateIntervalSec?: number;
  /** Error text for logs (redacted). */
  message?: string;
}

export interface TracePatchResponse extends JobStateResponse {
  /** N from `Range: 0-N`: the trace size GitLab has stored, i.e. where the next PATCH starts. */
  rangeEnd?: number;
}

export interface PatchOptions extends CallOptions {
  /** CI_DEBUG_TRACE / CI_DEBUG_SERVICES is on: GitLab marks the job's trace as debug. */
  debugTrace?: boolean;
}
