// GitLab's runner API, one method per endpoint (docs/gitlab-protocol.md §1–§4). Runner-scoped calls throw GitLabApiError
// for answers they cannot use; job-scoped calls (PUT/PATCH) return the status so the trace session can run
// GitLab's state machine. The runner token only ever goes to /runners* and /jobs/request: the /jobs/:id*
// methods take the job token alone, so they cannot send it.

import { randomUUID } from 'node:crypto';
import { silentLogger, type Logger } from '../core/logger.js';
import type {
  CallOptions,
  IssuedToken,
  JobRequestParams,
  JobRequestResult,
  JobStateResponse,
  PatchOptions,
  RegisterParams,
  RegisteredRunner,
  TracePatchResponse,
  UpdateJobBody,
  VerifyResult,
} from './api-types.js';
import { GitLabApiError, TokenModelError, type GitLabErrorKind } from './errors.js';
import type { RunnerInfo } from './info.js';
import { parseJobPayload, jobStub } from './job-payload.js';
import { LAST_UPDATE_HEADER, LastUpdateStore } from './last-update.js';
import { redact } from './redact.js';
import { isJsonResponse, responseJson, type HttpMethod, type HttpResponse, type Requester } from './requester.js';
import { describeTransportError, jobState, parseExpiry, serverMessage } from './responses.js';
import { isRunnerAuthenticationToken } from './token-model.js';

export const MAX_TRACE_PATCH_BYTES = 1024 * 1024;

export interface RunnerApiOptions {
  /** GitLab's address, e.g. https://gitlab.example.com (a trailing /api/v4 is tolerated). */
  url: string;
  requester: Requester;
  /** Sent on every request; see buildUserAgent. */
  userAgent: string;
  /** Shared long-poll cursors; a private one is made when omitted. */
  lastUpdates?: LastUpdateStore;
  logger?: Logger;
  /** 32 lowercase hex characters per call (X-Request-Id); random unless told. */
  newRequestId?: () => string;
  /** How long jobs/request may be held open (Workhorse long polling is ~50 s). Default 5 min. */
  jobRequestTimeoutMs?: number;
}

interface Call extends CallOptions {
  method: HttpMethod;
  path: string;
  headers?: Record<string, string>;
  json?: unknown;
  bytes?: Uint8Array;
  timeoutMs?: number;
  /** Values to mask in any message built from this call. */
  secrets: string[];
}

export class RunnerApi {
  readonly baseUrl: string;
  readonly lastUpdates: LastUpdateStore;
  private readonly logger: Logger;
  private readonly newRequestId: () => string;
  private readonly jobRequestTimeoutMs: number;

  constructor(private readonly options: RunnerApiOptions) {
    this.baseUrl = normaliseBaseUrl(options.url);
    this.lastUpdates = options.lastUpdates ?? new LastUpdateStore();
    this.logger = options.logger ?? silentLogger;
    // randomUUID draws on entropy Node fetches for many ids at once (0.6 us an id); randomBytes asks OpenSSL
    // every time (6 us warm, ~30 us in the 100-job profile), and every trace PATCH takes one.
    this.newRequestId = options.newRequestId ?? (() => randomUUID().replaceAll('-', ''));
    this.jobRequestTimeoutMs = options.jobRequestTimeoutMs ?? 5 * 60_000;
  }

  /** POST /runners/verify: checks a token and (re)announces this manager with its system_id and info. */
  async verify(token: string, systemId: string, info: RunnerInfo, options: CallOptions = {}): Promise<VerifyResult> {
    const call: Call = { method: 'POST', path: 'runners/verify', json: { token, system_id: systemId || undefined, info }, ...runnerAuth(token), ...options };
    const res = await this.send(call);
    this.observeLastUpdate(token, res);
    if (res.status === 200) {
      // Older GitLab answered a bare-text 200; gitlab-runner then accepts it without a body.
      if (!isJsonResponse(res)) return { token, legacyResponse: true };
      const body = this.decode(call, res) as { id?: unknown; token?: unknown; token_expires_at?: unknown };
      const result: VerifyResult = { token: typeof body.token === 'string' && body.token ? body.token : token, legacyResponse: false };
      if (typeof body.id === 'number') result.id = body.id;
      const exp = parseExpiry(body.token_expires_at);
      if (exp !== undefined) result.tokenExpiresAt = exp;
      return result;
    }
    if (res.status === 403) throw this.failure(call, res, 'forbidden', 'runner token is invalid, expired or the runner was removed');
    if (res.status === 422) throw this.failure(call, res, 'validation', 'the runner is orphaned (no project or group left)');
    throw this.failure(call, res, 'http', 'verifying the runner failed');
  }

  /** POST /runners with a legacy registration token. Never with a glrt- token (those are verified). */
  async register(registrationToken: string, params: RegisterParams, options: CallOptions = {}): Promise<RegisteredRunner> {
    if (isRunnerAuthenticationToken(registrationToken)) {
      throw new TokenModelError('a glrt- runner authentication token is not a registration token: it is verified, never registered');
    }
    const json = {
      token: registrationToken,
      description: params.description,
      maintenance_note: params.maintenanceNote,
      tag_list: params.tags?.join(','),
      run_untagged: params.runUntagged,
      locked: params.locked,
      access_level: params.accessLevel,
      maximum_timeout: params.maximumTimeoutSec,
      paused: params.paused,
      info: params.info,
    };
    const call: Call = { method: 'POST', path: 'runners', json, ...runnerAuth(registrationToken), ...options };
    const res = await this.send(call);
    this.observeLastUpdate(registrationToken, res);
    switch (res.status) {
      case 201: {
        const issued = this.issuedToken(call, res);
        const id = (responseJson(res) as { id?: unknown }).id;
        return typeof id === 'number' ? { ...issued, id } : issued;
      }
      case 403:
        throw this.failure(call, res, 'forbidden', 'registering the runner is forbidden (check the registration token)');
      case 410:
        throw this.failure(call, res, 'gone', 'registration tokens are disabled on this GitLab instance: create the runner in GitLab and use its glrt- token');
      case 400:
        throw this.failure(call, res, 'validation', 'GitLab refused the registration parameters');
      default:
        throw this.failure(call, res, 'http', 'registering the runner failed');
    }
  }

  /** DELETE /runners: deletes a runner created by `register`. Refused for glrt- tokens, where it would
   *  delete the runner made in GitLab's UI for every manager (use deleteManager). */
  async unregister(token: string, options: CallOptions = {}): Promise<void> {
    if (isRunnerAuthenticationToken(token)) {
      throw new TokenModelError('a glrt- runner is never deleted by DELETE /runners; remove this manager with deleteManager');
    }
    const call: Call = { method: 'DELETE', path: 'runners', json: { token }, ...runnerAuth(token), ...options };
    const res = await this.send(call);
    if (res.status === 204) return;
    if (res.status === 403) throw this.failure(call, res, 'forbidden', 'unregistering the runner is forbidden');
    throw this.failure(call, res, 'http', 'unregistering the runner failed');
  }

  /** DELETE /runners/managers: removes only this machine's manager; the runner stays. Not found is fine. */
  async deleteManager(token: string, systemId: string, options: CallOptions = {}): Promise<'deleted' | 'not_found'> {
    const call: Call = { method: 'DELETE', path: 'runners/managers', json: { token, system_id: systemId }, ...runnerAuth(token), ...options };
    const res = await this.send(call);
    if (res.status === 204) return 'deleted';
    if (res.status === 404) return 'not_found';
    if (res.status === 403) throw this.failure(call, res, 'forbidden', 'deleting the runner manager is forbidden');
    if (res.status === 400) throw this.failure(call, res, 'validation', 'GitLab refused to delete the runner manager');
    throw this.failure(call, res, 'http', 'deleting the runner manager failed');
  }

  /** POST /runners/reset_authentication_token: a new token; the old one stops working. */
  async resetToken(token: string, options: CallOptions = {}): Promise<IssuedToken> {
    const call: Call = { method: 'POST', path: 'runners/reset_authentication_token', json: { token }, ...runnerAuth(token), ...options };
    const res = await this.send(call);
    if (res.status === 201) return this.issuedToken(call, res);
    if (res.status === 403) throw this.failure(call, res, 'forbidden', 'resetting the runner token is forbidden (check the token)');
    if (res.status === 422) throw this.failure(call, res, 'validation', 'GitLab refused to reset the runner token');
    throw this.failure(call, res, 'http', 'resetting the runner token failed');
  }

  /** POST /jobs/request. Never throws for GitLab's answers or a lost connection; only for the caller's abort. */
  async requestJob(p: JobRequestParams): Promise<JobRequestResult> {
    const lastUpdate = p.lastUpdate ?? this.lastUpdates.get(LastUpdateStore.keyOf(this.baseUrl, p.token));
    const json = { token: p.token, system_id: p.systemId, last_update: lastUpdate, info: p.info, session: p.session };
    const call: Call = { method: 'POST', path: 'jobs/request', json, ...runnerAuth(p.token), timeoutMs: p.timeoutMs ?? this.jobRequestTimeoutMs };
    if (p.signal) call.signal = p.signal;
    let res: HttpResponse;
    try {
      res = await this.send(call);
    } catch (e) {
      if (p.signal?.aborted) throw e;
      return { kind: 'error', status: 0, message: (e as Error).message };
    }
    this.observeLastUpdate(p.token, res);
    const seen = res.headers.get(LAST_UPDATE_HEADER)?.trim();
    const withCursor = <T extends object>(r: T): T & { lastUpdate?: string } => (seen ? { ...r, lastUpdate: seen } : r);
    switch (res.status) {
      case 201: {
        let body: unknown;
        try {
          body = this.decode(call, res);
        } catch (e) {
          return { kind: 'error', status: 201, message: (e as Error).message };
        }
        const parsed = parseJobPayload(body);
        if (parsed.ok) return withCursor({ kind: 'job' as const, job: parsed.job });
        if (parsed.id === undefined || parsed.token === undefined) {
          return { kind: 'error', status: 201, message: `client error: POST /jobs/request answered 201 without a job id and token (${parsed.problems.slice(0, 3).join('; ')})` };
        }
        // GitLab handed us this job: it must still end, failed, with the reason in its trace.
        this.logger.error({ job: parsed.id, problems: parsed.problems }, 'job payload could not be read');
        return withCursor({ kind: 'job' as const, job: jobStub(parsed.id, parsed.token, parsed.failureReasons), unreadable: parsed.problems });
      }
      case 204:
        return withCursor({ kind: 'none' as const, longPolled: res.headers.get('gitlab-ci-builds-polling')?.trim().toLowerCase() === 'yes' });
      case 403:
        return { kind: 'forbidden' };
      case 409:
        return { kind: 'conflict', status: 409, message: this.failure(call, res, 'http', 'job request conflict, try again').message };
      case 503:
        return { kind: 'unavailable', status: 503, message: this.failure(call, res, 'http', 'GitLab instance unavailable').message };
      default:
        return { kind: 'error', status: res.status, message: this.failure(call, res, 'http', 'requesting a job failed').message };
    }
  }

  /** PUT /jobs/:id with the job token as JOB-TOKEN header and body `token`. */
  async updateJob(id: number, jobToken: string, body: UpdateJobBody, options: CallOptions = {}): Promise<JobStateResponse> {
    const call: Call = { method: 'PUT', path: `jobs/${id}`, headers: { 'JOB-TOKEN': jobToken }, json: { ...body, token: jobToken }, secrets: [jobToken], ...options };
    return this.jobCall(call, (res) => jobState(res));
  }

  /** PATCH /jobs/:id/trace: `bytes` (1 B to 1 MiB) stored at `start`. */
  async patchTrace(id: number, jobToken: string, start: number, bytes: Uint8Array, options: PatchOptions = {}): Promise<TracePatchResponse> {
    if (bytes.length === 0 || bytes.length > MAX_TRACE_PATCH_BYTES) throw new RangeError(`trace patch must be 1..${MAX_TRACE_PATCH_BYTES} bytes, got ${bytes.length}`);
    const call: Call = {
      method: 'PATCH',
      path: `jobs/${id}/trace?debug_trace=${options.debugTrace === true}`,
      // A bare inclusive range, no "bytes " unit and no total: what Rails parses.
      headers: { 'JOB-TOKEN': jobToken, 'Content-Type': 'text/plain', 'Content-Range': `${start}-${start + bytes.length - 1}` },
      bytes,
      secrets: [jobToken],
    };
    if (options.signal) call.signal = options.signal;
    return this.jobCall(call, (res) => {
      const r: TracePatchResponse = jobState(res);
      const m = /^\s*\d+\s*-\s*(\d+)\s*$/.exec(res.headers.get('range') ?? '');
      if (m) r.rangeEnd = Number(m[1]);
      return r;
    });
  }

  private async jobCall<R extends JobStateResponse>(call: Call, read: (res: HttpResponse) => R): Promise<R> {
    let res: HttpResponse;
    try {
      res = await this.send(call);
    } catch (e) {
      if (call.signal?.aborted) throw e;
      return { status: 0, message: (e as Error).message } as R;
    }
    const r = read(res);
    if (res.status >= 300) r.message = this.failure(call, res, 'http', 'job update not accepted').message;
    return r;
  }

  private async send(call: Call): Promise<HttpResponse> {
    const requestId = this.newRequestId();
    const headers: Record<string, string> = { 'User-Agent': this.options.userAgent, 'X-Request-Id': requestId, ...call.headers };
    const endpoint = `${call.method} /${call.path.split('?')[0]}`;
    try {
      const res = await this.options.requester.do({
        method: call.method,
        url: `${this.baseUrl}/api/v4/${call.path}`,
        headers,
        json: call.json,
        bytes: call.bytes,
        signal: call.signal,
        timeoutMs: call.timeoutMs,
      });
      this.logger.debug({ endpoint, status: res.status, requestId }, 'GitLab answered');
      return res;
    } catch (e) {
      if (call.signal?.aborted) throw e;
      const detail = redact(describeTransportError(e), call.secrets);
      throw new GitLabApiError('transport', 0, endpoint, `${endpoint}: no answer from GitLab (${detail})`, { cause: e });
    }
  }

  private decode(call: Call, res: HttpResponse): unknown {
    // On the expected status a body that is not JSON is a client error (gitlab-runner's -1).
    if (!isJsonResponse(res)) {
      throw this.failure(call, res, 'client', `client error: response is not application/json (got "${res.headers.get('content-type') ?? ''}")`, false);
    }
    try {
      return responseJson(res);
    } catch {
      throw this.failure(call, res, 'client', 'client error: response body is not valid JSON', false);
    }
  }

  private issuedToken(call: Call, res: HttpResponse): IssuedToken {
    const body = this.decode(call, res) as { token?: unknown; token_expires_at?: unknown };
    if (typeof body.token !== 'string' || !body.token) throw this.failure(call, res, 'client', 'client error: the answer carries no token', false);
    const exp = parseExpiry(body.token_expires_at);
    return exp === undefined ? { token: body.token } : { token: body.token, tokenExpiresAt: exp };
  }

  private observeLastUpdate(token: string, res: HttpResponse): void {
    this.lastUpdates.observe(LastUpdateStore.keyOf(this.baseUrl, token), res.headers.get(LAST_UPDATE_HEADER));
  }

  private failure(call: Call, res: HttpResponse, kind: GitLabErrorKind, what: string, withServerText = true): GitLabApiError {
    const endpoint = `${call.method} /${call.path.split('?')[0]}`;
    const server = withServerText ? serverMessage(res) : '';
    const text = `${what}: ${endpoint} answered ${res.status}${server ? ` (${server})` : ''}`;
    return new GitLabApiError(kind, res.status, endpoint, redact(text, call.secrets));
  }
}

function runnerAuth(token: string): { headers: Record<string, string>; secrets: string[] } {
  // Rails reads the body `token`; RUNNER-TOKEN is sent as gitlab-runner does (routers read it).
  return { headers: { 'RUNNER-TOKEN': token }, secrets: [token] };
}

/** https://host/ → https://host; https://host/gitlab/api/v4 → https://host/gitlab (and gitlab-runner's /ci). */
export function normaliseBaseUrl(url: string): string {
  let u = url.trim().replace(/\/+$/, '');
  u = u.replace(/\/api\/v4$/, '').replace(/\/ci$/, '');
  return u.replace(/\/+$/, '');
}
