// Errors of the runner API, classified once here. Messages are already redacted: no token ever appears.

import { FleetError } from '../core/errors.js';

export type GitLabErrorKind =
  | 'forbidden' // 403: bad, expired or removed token
  | 'gone' // 410: registration tokens are disabled on this instance
  | 'validation' // 400/422: GitLab refused the parameters (or the runner is orphaned)
  | 'not_found' // 404
  | 'client' // the answer had the expected status but not the expected body (not application/json, bad JSON)
  | 'transport' // no HTTP answer: connection refused, reset, timeout
  | 'http'; // any other status

export class GitLabApiError extends FleetError {
  constructor(
    readonly kind: GitLabErrorKind,
    /** HTTP status, or 0 when no answer came. */
    readonly status: number,
    /** `METHOD path`, e.g. "POST /runners/verify". */
    readonly endpoint: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Worth trying again later: no answer, throttling or a server-side error. */
  get retryable(): boolean {
    return this.kind === 'transport' || this.status === 429 || this.status >= 500;
  }
}

export const isGitLabApiError = (e: unknown): e is GitLabApiError => e instanceof GitLabApiError;
export const isGitLabForbidden = (e: unknown): boolean => isGitLabApiError(e) && e.kind === 'forbidden';

/** A `glrt-` token was about to be used where only legacy registration tokens belong (or the reverse). */
export class TokenModelError extends FleetError {}
