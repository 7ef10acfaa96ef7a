// The docker CLI command lines the executor runs on the machine. Every value goes through `shellQuote`
// (in `commandLine`); no secret is ever an argument: variables reach containers through a mode-600
// env file, registry logins through a DOCKER_CONFIG directory.

import { shellQuote } from '../remote-shell.js';

/** Label on every container, network and volume of a job: removal by label leaks nothing. */
export const JOB_LABEL = 'fleetrunner.job';

/** Where a job's push login (config.json) appears in the build container. */
export const CONTAINER_DOCKER_CONFIG_DIR = '/fleetrunner/docker-config';

/** gitlab-runner's shell detection: bash when the image has it, else a POSIX sh; the script comes on stdin. */
export const DETECT_SHELL = [
  'for s in /usr/local/bin/bash /usr/bin/bash /bin/bash /usr/local/bin/sh /usr/bin/sh /bin/sh /busybox/sh; do',
  '  if [ -x "$s" ]; then exec "$s"; fi',
  'done',
  'echo "shell not found" >&2',
  'exit 1',
].join('\n');

export function commandLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=,./:-]+$/.test(a) ? a : shellQuote(a))).join(' ');
}

/** A config `volumes` entry: "/path" is a volume of the job's own, anything with a ":" is passed to -v. */
export type VolumeSpec = { kind: 'job'; containerPath: string } | { kind: 'bind'; spec: string };

export function parseVolume(entry: string): VolumeSpec {
  return entry.includes(':') ? { kind: 'bind', spec: entry } : { kind: 'job', containerPath: entry };
}

export interface ContainerCommon {
  name: string;
  jobId: number;
  network: string;
  image: string;
  /** `-v` specs, in order (builds dir, config volumes, …). */
  mounts: readonly string[];
  privileged: boolean;
  extraHosts: readonly string[];
  /** Mode-600 file of KEY=value lines on the machine. */
  envFile?: string;
  /** Non-secret KEY=value pairs (paths) passed with -e. */
  env?: readonly string[];
  /** Replaces the image's ENTRYPOINT: the first element is the program, the rest go before the command. */
  entrypoint?: readonly string[];
  platform?: string;
  user?: string;
}

export interface BuildContainer extends ContainerCommon {
  workdir: string;
  cpus?: string;
  memory?: string;
}

export interface ServiceContainer extends ContainerCommon {
  aliases: readonly string[];
  command?: readonly string[];
}

function common(c: ContainerCommon): string[] {
  const a = ['--name', c.name, '--label', `${JOB_LABEL}=${c.jobId}`, '--network', c.network];
  if (c.privileged) a.push('--privileged');
  for (const h of c.extraHosts) a.push('--add-host', h);
  for (const m of c.mounts) a.push('-v', m);
  if (c.envFile !== undefined) a.push('--env-file', c.envFile);
  for (const e of c.env ?? []) a.push('-e', e);
  if (c.platform) a.push('--platform', c.platform);
  if (c.user) a.push('--user', c.user);
  if (c.entrypoint !== undefined) a.push('--entrypoint', c.entrypoint[0] ?? '');
  return a;
}

/** `docker create -i …`: the stage script reaches the container's shell on stdin (`docker start -a -i`). */
export function buildContainerArgs(c: BuildContainer): string[] {
  const a = ['docker', 'create', '-i', ...common(c), '-w', c.workdir];
  if (c.cpus !== undefined) a.push('--cpus', c.cpus);
  if (c.memory !== undefined) a.push('--memory', c.memory);
  a.push(c.image, ...(c.entrypoint?.slice(1) ?? []), 'sh', '-c', DETECT_SHELL);
  return a;
}

/** `docker run -d …` for one service, on the job's network under each alias. */
export function serviceContainerArgs(c: ServiceContainer): string[] {
  const a = ['docker', 'run', '-d', ...common(c)];
  for (const alias of c.aliases) a.push('--network-alias', alias);
  a.push(c.image, ...(c.entrypoint?.slice(1) ?? []), ...(c.command ?? []));
  return a;
}

/**
 * Makes `owner` (a name or uid[:gid], resolved in the job image) own `paths` in the builds dir: the checkout
 * goes to the image's `executor_opts.docker.user` before the user stages (the machine's stages made it), and
 * the job's files come back to the machine user after them (containers run as root by default, and a
 * non-root SSH user could not clean or re-fetch root's files). Runs in the job image as root, no network;
 * needs its `chown`. gitlab-runner gets there with umask 0000 in its helper; a chown keeps files private.
 */
export function chownArgs(o: { jobId: number; image: string; buildsDir: string; owner: string; paths: readonly string[] }): string[] {
  return [
    'docker', 'run', '--rm', '--label', `${JOB_LABEL}=${o.jobId}`, '--network', 'none', '--user', '0:0',
    '-v', `${o.buildsDir}:${o.buildsDir}`, '--entrypoint', 'chown', o.image, '-R', '--', o.owner, ...o.paths,
  ];
}

/** True for the users a container runs as when none is named: nothing to hand over. */
export function isRootUser(user: string | undefined): boolean {
  return user === undefined || user === '' || /^(0|root)(:(0|root))?$/.test(user);
}

/** Removes everything labelled with the job: containers (with their anonymous volumes), networks, volumes. */
export function removeByLabelScript(jobId: number): string {
  const f = shellQuote(`label=${JOB_LABEL}=${jobId}`);
  return [
    `ids=$(docker ps -aq --filter ${f}) && if [ -n "$ids" ]; then docker rm -f -v $ids >/dev/null; fi`,
    `ids=$(docker network ls -q --filter ${f}) && if [ -n "$ids" ]; then docker network rm $ids >/dev/null; fi`,
    `ids=$(docker volume ls -q --filter ${f}) && if [ -n "$ids" ]; then docker volume rm -f $ids >/dev/null; fi`,
    // Report what is left (a container still being removed, a network still in use).
    `left=$( { docker ps -aq --filter ${f}; docker network ls -q --filter ${f}; docker volume ls -q --filter ${f}; } | wc -l)`,
    `if [ "$left" -ne 0 ]; then echo "$left resources of the job are left" >&2; exit 1; fi`,
  ].join('\n');
}
