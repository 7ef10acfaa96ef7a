// What a container-based executor needs from the payload besides the stage scripts: the job image and
// services with GitLab's variable expansion applied (docs/gitlab-protocol.md §6.4: image and service names and aliases
// are expanded), and the environment containers start with. Pure.

import type { JobImage, JobPayload, JobVariable } from '../core/index.js';
import type { PlanContext } from './context.js';
import { projectDirs } from './dirs.js';
import { expandVariables as expand } from './expand.js';
import { exportable } from './preamble.js';
import { collectVariables, resolveVariables } from './variables.js';

export interface EnvVariable {
  key: string;
  value: string;
}

export interface ContainerImage {
  /** Expanded image reference, e.g. `docker:27-dind` or `registry.example.com/grp/img:1`. */
  name: string;
  /** Explicit aliases from `alias:` (expanded, split on commas and spaces); derived ones are the executor's. */
  aliases: string[];
  entrypoint?: string[];
  command?: string[];
  /** `pull_policy` as the job gave it (validated by the executor against its config). */
  pullPolicies?: string[];
  /** The service's own `variables:`, expanded against the job's. Empty for the job image. */
  variables: EnvVariable[];
  platform?: string;
  user?: string;
}

export interface JobContainers {
  /** The job's `image:`, or undefined when the job has none (the executor uses its default image). */
  image?: ContainerImage;
  services: ContainerImage[];
  /** Variables a container starts with: the job's public ones and the runner's own (GitLab gives services
   *  "public and internal" variables), expanded, last definition wins. Never masked or protected-only
   *  values (the stage scripts export those themselves), never file variables. */
  environment: EnvVariable[];
}

/** `alias: "a, b c"` → ["a", "b", "c"] (GitLab's service_multiple_aliases). */
export function splitAliases(alias: string | undefined): string[] {
  return (alias ?? '').split(/[\s,]+/).filter((a) => a !== '');
}

/**
 * The job's image and service names as the executor will use them, expanded against the job's variables
 * from GitLab (`image: $CI_REGISTRY_IMAGE/builder:1`). Routing decides on these, never on the raw `$…`.
 * Runner-added variables (paths, versions) are not needed to name an image.
 */
export function expandedImageNames(job: JobPayload): { image?: string; services: string[] } {
  const services = job.services.map((s) => expand(s.name, job.variables)).filter((n) => n !== '');
  const image = job.image ? expand(job.image.name, job.variables) : '';
  return image ? { image, services } : { services };
}

function containerImage(img: JobImage, list: readonly JobVariable[]): ContainerImage {
  const own = img.variables;
  const all = [...list, ...own];
  const out: ContainerImage = {
    name: expand(img.name, list),
    aliases: splitAliases(img.alias === undefined ? undefined : expand(img.alias, list)),
    variables: resolveVariables(all)
      .filter((v) => own.some((o) => o.key === v.key) && v.filePath === undefined)
      .map((v) => ({ key: v.key, value: v.value })),
  };
  // Empty lists (GitLab's null) leave the image's own entrypoint and command, and the executor's policy.
  if (img.entrypoint.length > 0) out.entrypoint = [...img.entrypoint];
  if (img.command.length > 0) out.command = [...img.command];
  if (img.pull_policy.length > 0) out.pullPolicies = [...img.pull_policy];
  const docker = img.executor_opts?.docker;
  if (docker?.platform) out.platform = docker.platform;
  if (docker?.user) out.user = docker.user;
  return out;
}

export function jobContainers(job: JobPayload, ctx: PlanContext): JobContainers {
  const list = collectVariables(job, ctx, projectDirs(job, ctx), 'running');
  const lastDefinition = new Map<string, JobVariable>();
  for (const v of list) lastDefinition.set(v.key, v);
  const environment = resolveVariables(list)
    .filter((v) => {
      const src = lastDefinition.get(v.key);
      return src?.public === true && src.masked !== true && v.filePath === undefined && exportable(v);
    })
    .map((v) => ({ key: v.key, value: v.value }));
  const out: JobContainers = {
    services: job.services.map((s) => containerImage(s, list)).filter((s) => s.name !== ''),
    environment,
  };
  const image = job.image ? containerImage(job.image, list) : undefined;
  if (image?.name) out.image = image;
  return out;
}
