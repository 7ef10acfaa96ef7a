// The usual composition: node:http (or a fetch given for tests), transport retry around it, the endpoints on top.

import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { LastUpdateStore } from './last-update.js';
import { HttpRequester } from './http-requester.js';
import { FetchRequester } from './requester.js';
import { RetryRequester, type RetryRequesterOptions } from './retry-requester.js';
import { RunnerApi } from './runner-api.js';

export interface CreateRunnerApiOptions {
  url: string;
  userAgent: string;
  clock: Clock;
  logger?: Logger;
  lastUpdates?: LastUpdateStore;
  /** Per-request limit for everything but jobs/request. Default 120 s. */
  requestTimeoutMs?: number;
  /** jobs/request (long polling). Default 5 min. */
  jobRequestTimeoutMs?: number;
  retry?: Omit<RetryRequesterOptions, 'clock' | 'logger'>;
  fetch?: typeof fetch;
}

export function createRunnerApi(o: CreateRunnerApiOptions): RunnerApi {
  const timeout = o.requestTimeoutMs !== undefined ? { timeoutMs: o.requestTimeoutMs } : {};
  const base = o.fetch ? new FetchRequester({ ...timeout, fetch: o.fetch }) : new HttpRequester(timeout);
  const requester = new RetryRequester(base, { ...o.retry, clock: o.clock, ...(o.logger ? { logger: o.logger } : {}) });
  return new RunnerApi({
    url: o.url,
    requester,
    userAgent: o.userAgent,
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.lastUpdates ? { lastUpdates: o.lastUpdates } : {}),
    ...(o.jobRequestTimeoutMs !== undefined ? { jobRequestTimeoutMs: o.jobRequestTimeoutMs } : {}),
  });
}
