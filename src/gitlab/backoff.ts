// Exponential backoff with jitter, shared by the transport retry and the final job update.

export interface BackoffPolicy {
  minMs: number;
  maxMs: number;
  /** Growth per attempt; 2 unless told. */
  factor?: number;
  /** Spread each wait uniformly over [minMs, computed): retries from many jobs do not line up. */
  jitter?: boolean;
}

/** Wait before retry number `attempt` (0 for the first retry): min·factor^attempt, jittered down towards
 *  min, never above max. Same shape as jpillora/backoff, which gitlab-runner uses. */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const { minMs, maxMs, factor = 2, jitter = false } = policy;
  let d = minMs * Math.pow(factor, Math.max(0, attempt));
  if (jitter) d = minMs + random() * (d - minMs);
  return Math.min(Math.max(minMs, d), maxMs);
}
