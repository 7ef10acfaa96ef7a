// Ordered routing: the first executor whose rules match the job takes it. Pure.

import type { RoutingRules } from '../config/index.js';
import type { JobPayload } from '../core/job.js';
import { expandedImageNames } from '../jobs/containers.js';

export interface Routable {
  name: string;
  match?: RoutingRules;
}

export function matches(rules: RoutingRules | undefined, job: JobPayload): boolean {
  if (!rules) return true;
  // Names as the executor will use them: `$CI_REGISTRY_IMAGE/builder:1` routes as what it expands to.
  const expanded = expandedImageNames(job);
  if (rules.services?.length) {
    const names = expanded.services;
    if (!rules.services.some((prefix) => names.some((n) => n.startsWith(prefix)))) return false;
  }
  if (rules.images?.length) {
    const image = expanded.image ?? '';
    if (!rules.images.some((prefix) => image.startsWith(prefix))) return false;
  }
  if (rules.variables) {
    const vars = new Map(job.variables.map((v) => [v.key, v.value])); // last definition wins
    for (const [k, v] of Object.entries(rules.variables)) if (vars.get(k) !== v) return false;
  }
  return true;
}

/** The first executor whose rules match, or undefined when none does. */
export function route<T extends Routable>(executors: readonly T[], job: JobPayload): T | undefined {
  return executors.find((e) => matches(e.match, job));
}

/** The rule that chose an executor, as the trace's first lines say it. */
export function describeRoute(chosen: Routable): string {
  const r = chosen.match;
  const parts: string[] = [];
  if (r?.services?.length) parts.push(`services ${r.services.map((s) => `${s}*`).join(' | ')}`);
  if (r?.images?.length) parts.push(`image ${r.images.map((s) => `${s}*`).join(' | ')}`);
  if (r?.variables) parts.push(...Object.entries(r.variables).map(([k, v]) => `${k}=${JSON.stringify(v)}`));
  return parts.length ? `matched ${parts.join(', ')}` : 'default route (no match rules)';
}
