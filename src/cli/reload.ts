// What a SIGHUP can change in a running coordinator (as gitlab-runner reloads config.toml on HUP): the
// global `concurrent`, and per executor its `maxMachines`, idle `pool` and routing `match`. Everything else
// (GitLab URL and token, executors added or removed, providers, machine settings, state, metrics, logging)
// is read once at start; a change there is reported as needing a restart, and not applied. Pure.

import type { FleetConfig } from '../config/index.js';

type ExecutorConfig = FleetConfig['executors'][number];

export interface ReloadPlan {
  concurrent: number;
  executors: Array<Pick<ExecutorConfig, 'name' | 'maxMachines' | 'pool' | 'match'>>;
  /** Key paths whose new values need a restart (not applied). */
  needsRestart: string[];
  /** Key paths whose change is applied. */
  changed: string[];
}

const RELOADABLE = new Set(['maxMachines', 'pool', 'match']);

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function planReload(current: FleetConfig, next: FleetConfig): ReloadPlan {
  const needsRestart: string[] = [];
  const changed: string[] = [];
  for (const key of Object.keys({ ...current, ...next }) as Array<keyof FleetConfig>) {
    if (key === 'concurrent' || key === 'executors') continue;
    if (!same(current[key], next[key])) needsRestart.push(key);
  }
  if (current.concurrent !== next.concurrent) changed.push('concurrent');

  const names = (c: FleetConfig) => c.executors.map((e) => e.name);
  if (!same(names(current), names(next))) needsRestart.push('executors (added, removed, renamed or reordered)');
  const executors: ReloadPlan['executors'] = [];
  current.executors.forEach((cur, i) => {
    const nxt = next.executors.find((e) => e.name === cur.name);
    if (!nxt) return;
    for (const key of Object.keys({ ...cur, ...nxt }) as Array<keyof ExecutorConfig>) {
      const differs = !same(cur[key], nxt[key]);
      if (!differs) continue;
      (RELOADABLE.has(key) ? changed : needsRestart).push(`executors[${i}].${key}`);
    }
    executors.push({ name: cur.name, maxMachines: nxt.maxMachines, pool: nxt.pool, ...(nxt.match && { match: nxt.match }) });
  });
  return { concurrent: next.concurrent, executors, needsRestart, changed };
}
