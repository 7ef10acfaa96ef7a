// Shared by the GitLab-outage e2e tests.
import type { FakeGitLab, RequestLogEntry } from '../../src/fakegitlab/index.js';

export const OUTAGE_MS = 7 * 60_000;
/** The test's cap between two delivery rounds (production default 5m): delivery lands soon after the outage. */
export const BACKOFF_CAP = ['  finalUpdateMaxBackoff: 20s'];

export const LINES = Array.from({ length: 40 }, (_, i) => `echo "delivery line ${i + 1}"`);

/** The first request matching `pred`, once the fake has answered it. */
export async function waitForRequest(fake: FakeGitLab, pred: (r: RequestLogEntry) => boolean, timeoutMs: number): Promise<RequestLogEntry> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const hit = fake.requests.find((r) => r.status !== undefined && pred(r));
    if (hit) return hit;
    if (Date.now() > until) throw new Error('no such request');
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function linesInOrder(trace: string): boolean {
  let at = -1;
  for (let i = 1; i <= 40; i++) {
    const next = trace.indexOf(`delivery line ${i}\n`, at + 1);
    if (next < 0 || next < at) return false;
    at = next;
  }
  return true;
}


/** Waits until the coordinator's log matches: it logs a delivery just after GitLab's answer, which the
 *  fake records (and a test may see) a moment earlier. */
export async function waitForLog(log: () => string, re: RegExp, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!re.test(log()) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}
