// The GitLab runners one coordinator serves (config `runners:`): each has its own job feed (its token) and
// the executors it owns, and gets its own requesters, so one runner's full executors never keep another
// runner from asking for jobs. Without `runners`, one lane asks for every executor.

import type { CoordinatorExecutor } from './coordinator.js';
import type { JobFeed } from './ports.js';

/** One GitLab runner the coordinator serves: its job feed (its token) and the executors it owns. */
export interface RunnerLane {
  name: string;
  feed: JobFeed;
  /** Names of its executors, in routing order. */
  executors: readonly string[];
  /** Its job requests in flight at once (default: the coordinator's requestConcurrency). */
  requestConcurrency?: number;
}

/** A runner lane as the loop uses it: its executors resolved. */
export interface Lane {
  name: string;
  feed: JobFeed;
  executors: readonly CoordinatorExecutor[];
  requestConcurrency: number;
}

/** The runners the loop asks for: `runners`, or one over every executor; each lane's executors resolved. */
export function resolveLanes(o: { executors: readonly CoordinatorExecutor[]; feed?: JobFeed; runners?: readonly RunnerLane[]; requestConcurrency?: number }): Lane[] {
  const byName = new Map(o.executors.map((e) => [e.name, e]));
  if (!o.runners) {
    if (!o.feed) throw new Error('a coordinator needs a job feed or runners');
    return [{ name: 'default', feed: o.feed, executors: o.executors, requestConcurrency: o.requestConcurrency ?? 1 }];
  }
  return o.runners.map((r) => ({
    name: r.name,
    feed: r.feed,
    executors: r.executors.map((n) => {
      const e = byName.get(n);
      if (!e) throw new Error(`runner ${r.name}: no executor named ${n}`);
      return e;
    }),
    requestConcurrency: r.requestConcurrency ?? o.requestConcurrency ?? 1,
  }));
}
