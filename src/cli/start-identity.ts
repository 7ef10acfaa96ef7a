// Start-up against GitLab: a coordinator that cannot reach GitLab waits and tries again (a crash loop under
// ECS would only add noise), while a token GitLab refuses is a configuration error that no retry fixes.

import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { backoffDelayMs, GitLabApiError, TokenModelError, type RunnerIdentity } from '../gitlab/index.js';

export type StartResult = { kind: 'started' } | { kind: 'refused'; reason: string } | { kind: 'stopped' };

const RETRY = { minMs: 1_000, maxMs: 60_000 };

/** Answers no retry can change: the token or the instance's settings must. */
function refusal(e: unknown): string | undefined {
  if (e instanceof TokenModelError) return errorMessage(e);
  if (!(e instanceof GitLabApiError)) return undefined;
  if (e.kind === 'forbidden') return `GitLab refused the runner token (403): ${e.message}`;
  if (e.kind === 'gone') return `GitLab no longer accepts registration tokens (410): ${e.message}`;
  if (e.kind === 'validation') return `GitLab refused the runner's parameters (${e.status}): ${e.message}`;
  return undefined;
}

/** Verifies (or registers) the runner, retrying with backoff for as long as GitLab is unreachable. */
export async function startIdentity(identity: RunnerIdentity, o: { url: string; clock: Clock; logger: Logger; signal: AbortSignal }): Promise<StartResult> {
  for (let attempt = 0; ; attempt++) {
    if (o.signal.aborted) return { kind: 'stopped' };
    try {
      await identity.start(o.signal);
      return { kind: 'started' };
    } catch (e) {
      if (o.signal.aborted) return { kind: 'stopped' };
      const refused = refusal(e);
      if (refused) return { kind: 'refused', reason: refused };
      const waitMs = backoffDelayMs(attempt, RETRY);
      o.logger.warn({ url: o.url, attempt: attempt + 1, retryInS: Math.round(waitMs / 1000), err: errorMessage(e) }, 'GitLab is not reachable yet; trying again');
      try {
        await o.clock.sleep(waitMs, o.signal);
      } catch {
        return { kind: 'stopped' };
      }
    }
  }
}
