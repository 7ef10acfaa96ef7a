// Transport retry as a decorator (docs/gitlab-protocol.md §0): statuses that mean "not now" are retried a few times,
// waiting as long as GitLab asks, else backing off exponentially with jitter.

import type { Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { backoffDelayMs, type BackoffPolicy } from './backoff.js';
import type { HttpRequest, HttpResponse, Requester } from './requester.js';

const RETRIED = new Set([408, 429, 500, 502, 503, 504]);

/** 408, 429, 500, 502, 503, 504 and anything ≥ 512 (gitlab-runner's list; 501/505–511 are permanent). */
export function isRetriedStatus(status: number): boolean {
  return RETRIED.has(status) || status >= 512;
}

export interface RetryRequesterOptions {
  /** Attempts in total, the first included. Default 5. */
  maxAttempts?: number;
  /** Backoff used when the answer names no wait. Default 100 ms → 60 s, factor 2, jitter. */
  backoff?: BackoffPolicy;
  /** A wait named by a header is capped here, so a bogus header cannot park the runner. Default 15 min. */
  maxHeaderWaitMs?: number;
  clock: Pick<Clock, 'now' | 'sleep'>;
  random?: () => number;
  logger?: Logger;
}

export const DEFAULT_RETRY_BACKOFF: BackoffPolicy = { minMs: 100, maxMs: 60_000, factor: 2, jitter: true };

// RFC 1123 as Go's time.RFC1123 writes it: "Wed, 21 Oct 2015 07:28:00 GMT".
const RFC1123 = /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} [A-Za-z]{1,5}$/;

/** Milliseconds GitLab asked us to wait, from `RateLimit-ResetTime` (an RFC 1123 date) or else
 *  `Retry-After` (whole seconds); undefined when neither names a positive wait. */
export function headerWaitMs(headers: Headers, nowMs: number): number | undefined {
  const reset = headers.get('ratelimit-resettime')?.trim();
  if (reset && RFC1123.test(reset)) {
    const at = Date.parse(reset);
    if (Number.isFinite(at) && at - nowMs > 0) return at - nowMs;
  }
  const after = headers.get('retry-after')?.trim();
  if (after && /^\d+$/.test(after)) {
    const s = Number(after);
    if (s > 0) return s * 1000;
  }
  return undefined;
}

export class RetryRequester implements Requester {
  private readonly maxAttempts: number;
  private readonly backoff: BackoffPolicy;
  private readonly maxHeaderWaitMs: number;
  private readonly random: () => number;
  private readonly logger: Logger;

  constructor(
    private readonly inner: Requester,
    private readonly options: RetryRequesterOptions,
  ) {
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.backoff = options.backoff ?? DEFAULT_RETRY_BACKOFF;
    this.maxHeaderWaitMs = options.maxHeaderWaitMs ?? 15 * 60_000;
    this.random = options.random ?? Math.random;
    this.logger = options.logger ?? silentLogger;
  }

  async do(req: HttpRequest): Promise<HttpResponse> {
    let backoffStep = 0;
    for (let attempt = 1; ; attempt++) {
      // Transport errors are not retried here: the caller's own loop (job polling, trace ticks, final
      // update retries) decides, as in gitlab-runner.
      const res = await this.inner.do(req);
      if (!isRetriedStatus(res.status) || attempt >= this.maxAttempts) return res;

      const asked = headerWaitMs(res.headers, this.options.clock.now());
      const waitMs =
        asked !== undefined
          ? Math.min(asked, this.maxHeaderWaitMs)
          : backoffDelayMs(backoffStep++, this.backoff, this.random);
      this.logger.info(
        { method: req.method, path: pathOf(req.url), status: res.status, attempt, waitMs },
        'GitLab asked to retry; waiting before the next attempt',
      );
      await this.options.clock.sleep(waitMs, req.signal);
    }
  }
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '?';
  }
}
