// One job's Docker resources on the machine: its network, its volumes, its service containers, the
// private files the containers use (env files, Docker configs), and their removal. Everything carries
// the job label, and removal is by label, so nothing leaks, even after a failure half-way through.

import { createHash, randomBytes } from 'node:crypto';
import { posix } from 'node:path';

import type { JobPayload } from '../../core/index.js';
import type { EnvVariable, JobContainers } from '../../jobs/index.js';
import { shellQuote } from '../remote-shell.js';
import type { TraceWriter } from '../trace-lines.js';
import { serviceAliases } from './aliases.js';
import {
  CONTAINER_DOCKER_CONFIG_DIR,
  JOB_LABEL,
  commandLine,
  chownArgs,
  isRootUser,
  parseVolume,
  removeByLabelScript,
  serviceContainerArgs,
  type BuildContainer,
} from './docker-args.js';
import { registryOf } from './image-ref.js';
import { PrepareFailure, PrepareStopped, ensureImage, type PullRequest } from './image-pull.js';
import { lastLines, type MachineShell } from './machine-shell.js';
import type { DockerStyleSettings, PullPolicy } from './options.js';
import { resolvePullPolicies } from './pull-policy.js';
import { coversRegistry, isEmptyAuthConfig, renderDockerConfig, type DockerAuthConfig } from './registry-auth.js';
import { waitForServices, type StartedService } from './services.js';

export interface DockerJobOptions {
  shell: MachineShell;
  trace: TraceWriter;
  settings: DockerStyleSettings;
  /** From config only, never from the job. */
  privileged: boolean;
  job: JobPayload;
  containers: JobContainers;
  /** The machine's builds root: mounted at the same path everywhere, so paths need no translation. */
  buildsDir: string;
  projectDir: string;
  pullAuth: DockerAuthConfig;
  pushAuth: DockerAuthConfig;
  /** A job an earlier coordinator prepared (its records on the machine): its containers' prefix and files. */
  resume?: DockerJobState;
  /** The job's AWS credentials directory (file form): mounted read-only, at the same path, into build
   *  containers. The directory, not its files: a renewal's rename must reach a running container. */
  credentialsDir?: string;
}

/** What a successor needs to go on with a prepared job (recorded in job.json, which is private to the machine). */
export interface DockerJobState {
  prefix: string;
  /** The machine user's "uid:gid" when it is not root. */
  owner?: string;
  /** The Docker config handed to the build containers, when there is one. */
  pushConfigFile?: string;
}

/** Env file lines: Docker's format has no quoting, so a value with a line break cannot be passed (the
 *  stage scripts export every variable themselves; the container env matters for entrypoints). */
export function envFileContent(vars: readonly EnvVariable[]): string {
  const last = new Map<string, string>();
  for (const v of vars) {
    last.delete(v.key);
    last.set(v.key, v.value);
  }
  return [...last]
    .filter(([k, v]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !/[\r\n\0]/.test(v))
    .map(([k, v]) => `${k}=${v}\n`)
    .join('');
}

export class DockerJob {
  /** `fr-<job id>-<random>`: the network's name and the prefix of every container and volume. */
  readonly prefix: string;
  readonly image: string;
  private readonly jobVolumes = new Map<string, string>();
  private readonly started: StartedService[] = [];
  private pullConfigDir: string | undefined;
  private pushConfigFile: string | undefined;
  private readonly buildEnvFile: string;
  /** "uid:gid" of the machine user, when it is not root (files are handed back to it at the end). */
  private owner: string | undefined;
  /** The checkout belongs to the job image's user (between the user stages and the machine's own). */
  private handedToImageUser = false;

  constructor(private readonly o: DockerJobOptions) {
    this.prefix = o.resume?.prefix ?? `fr-${o.job.id}-${randomBytes(4).toString('hex')}`;
    this.image = o.containers.image?.name || o.settings.defaultImage;
    this.buildEnvFile = posix.join(o.shell.runDir, 'build.env');
    this.owner = o.resume?.owner;
    this.pushConfigFile = o.resume?.pushConfigFile;
  }

  /** For job.json: what a successor needs to go on after prepare. */
  state(): DockerJobState {
    return { prefix: this.prefix, ...(this.owner !== undefined && { owner: this.owner }), ...(this.pushConfigFile !== undefined && { pushConfigFile: this.pushConfigFile }) };
  }

  get network(): string {
    return this.prefix;
  }

  private get label(): string {
    return `${JOB_LABEL}=${this.o.job.id}`;
  }

  /** Pulls, network, volumes, services. Throws PrepareFailure (reason for GitLab) or PrepareStopped. */
  async prepare(stop: AbortSignal): Promise<void> {
    const { shell, settings, containers } = this.o;
    const policies = (requested: readonly string[] | undefined, image: string) => {
      const d = resolvePullPolicies(requested, settings);
      if (!d.ok) throw new PrepareFailure('runner_configuration_error', `image ${JSON.stringify(image)}: ${d.message}`);
      return d.policies;
    };
    // Refuse bad policies before anything is created.
    const buildPolicies = policies(containers.image?.pullPolicies, this.image);
    const servicePolicies = containers.services.map((s) => policies(s.pullPolicies, s.name));

    const id = await shell.check('printf "%s:%s" "$(id -u)" "$(id -g)"', 'could not read the machine user');
    if (/^\d+:\d+$/.test(id) && !id.startsWith('0:')) this.owner = id;
    await this.writePrivateFiles();
    await shell.check(`docker network create --label ${shellQuote(this.label)} ${shellQuote(this.network)} >/dev/null`, 'could not create the job network');
    for (const v of settings.volumes) {
      const spec = parseVolume(v);
      if (spec.kind !== 'job' || this.jobVolumes.has(spec.containerPath)) continue;
      const name = `${this.prefix}-${createHash('sha256').update(spec.containerPath).digest('hex').slice(0, 8)}`;
      await shell.check(`docker volume create --label ${shellQuote(this.label)} ${shellQuote(name)} >/dev/null`, `could not create a volume for ${spec.containerPath}`);
      this.jobVolumes.set(spec.containerPath, name);
    }

    const image = containers.image;
    await ensureImage(shell, this.o.trace, this.pullRequest(this.image, buildPolicies, image?.platform), stop);

    for (const [i, svc] of containers.services.entries()) {
      this.o.trace.line(`Starting service ${svc.name} ...`);
      await ensureImage(shell, this.o.trace, this.pullRequest(svc.name, servicePolicies[i] ?? [], svc.platform), stop);
      if (stop.aborted) throw new PrepareStopped();
      const aliases = serviceAliases(svc.name, svc.aliases);
      const shown = svc.aliases[0] ?? aliases[0];
      const name = `${this.prefix}-svc-${i}${shown ? `-${shown.replace(/[^A-Za-z0-9_.-]/g, '_')}` : ''}`.slice(0, 120);
      const envFile = posix.join(shell.runDir, `service-${i}.env`);
      await shell.writePrivateFile(envFile, envFileContent([...containers.environment, ...svc.variables]));
      const argv = serviceContainerArgs({
        name,
        jobId: this.o.job.id,
        network: this.network,
        image: svc.name,
        aliases,
        mounts: this.commonMounts(),
        privileged: settings.servicesPrivileged,
        extraHosts: settings.extraHosts,
        envFile,
        ...(svc.entrypoint !== undefined && { entrypoint: svc.entrypoint }),
        ...(svc.command !== undefined && { command: svc.command }),
        ...(svc.platform !== undefined && { platform: svc.platform }),
        ...(svc.user !== undefined && { user: svc.user }),
      });
      const r = await shell.exec(`${commandLine(argv)} >/dev/null`);
      if (r.exitCode !== 0) {
        throw new PrepareFailure('runner_system_failure', `could not start service ${svc.name}: ${lastLines(r.stderr || r.stdout, 3)}`);
      }
      this.started.push({ name, image: svc.name });
    }
    await waitForServices(shell, this.o.trace, this.started, this.network, settings.waitForServicesTimeoutMs, stop);
  }

  /** The build container for one stage (created and started by the stage transport). */
  buildContainer(name: string): BuildContainer {
    const { settings, containers } = this.o;
    const mounts = this.commonMounts();
    const env: string[] = [];
    if (settings.hostDockerSocket) mounts.push('/var/run/docker.sock:/var/run/docker.sock');
    if (this.o.credentialsDir !== undefined) mounts.push(`${this.o.credentialsDir}:${this.o.credentialsDir}:ro`);
    if (this.pushConfigFile !== undefined) {
      mounts.push(`${this.pushConfigFile}:${CONTAINER_DOCKER_CONFIG_DIR}/config.json:ro`);
      env.push(`DOCKER_CONFIG=${CONTAINER_DOCKER_CONFIG_DIR}`);
    }
    const image = containers.image;
    return {
      name,
      jobId: this.o.job.id,
      network: this.network,
      image: this.image,
      workdir: this.o.projectDir,
      mounts,
      privileged: this.o.privileged,
      extraHosts: settings.extraHosts,
      envFile: this.buildEnvFile,
      env,
      ...(settings.cpus !== undefined && { cpus: settings.cpus }),
      ...(settings.memory !== undefined && { memory: settings.memory }),
      ...(image?.entrypoint !== undefined && { entrypoint: image.entrypoint }),
      ...(image?.platform !== undefined && { platform: image.platform }),
      ...(image?.user !== undefined && { user: image.user }),
    };
  }

  /** Before the user stages: the checkout becomes the image user's when the job names one (not root). */
  async handOver(alreadyDone = false): Promise<void> {
    const user = this.o.containers.image?.user;
    if (isRootUser(user)) return;
    if (alreadyDone) {
      this.handedToImageUser = true;
      return;
    }
    const problem = await this.giveFilesTo(user!);
    if (problem) this.o.trace.warning(`could not give the checkout to user ${user}: ${problem}`);
    this.handedToImageUser = true;
  }

  /** After the user stages, before the machine's own (cache, artifacts, cleanup): the files come back. */
  async handBack(alreadyDone = false): Promise<void> {
    if (!this.handedToImageUser) return;
    this.handedToImageUser = false;
    if (alreadyDone) return;
    const problem = await this.giveFilesTo(this.owner ?? '0:0');
    if (problem) this.o.trace.warning(`could not give the job's files back to the machine user: ${problem}`);
  }

  private async giveFilesTo(owner: string, timeoutMs?: number): Promise<string | undefined> {
    const argv = chownArgs({ jobId: this.o.job.id, image: this.image, buildsDir: this.o.buildsDir, owner, paths: [this.o.projectDir, `${this.o.projectDir}.tmp`] });
    const r = await this.o.shell.exec(`${commandLine(argv)} 2>&1 | grep -v 'No such file or directory'`, timeoutMs);
    return r.stdout.trim() === '' ? undefined : lastLines(r.stdout, 2);
  }

  /** Hands the job's files back to the machine user (when it is not root), then removes every
   *  container, network and volume labelled with the job. Returns a problem worth a warning, if any. */
  async teardown(timeoutMs: number, userStagesRan: boolean): Promise<string | undefined> {
    let problem: string | undefined;
    if (userStagesRan && this.owner !== undefined) {
      const failed = await this.giveFilesTo(this.owner, timeoutMs);
      if (failed) problem = `could not give the job's files back to the machine user: ${failed}`;
    }
    await this.o.shell.check(removeByLabelScript(this.o.job.id), 'could not remove the job\'s containers', timeoutMs);
    return problem;
  }

  /** Builds dir and config volumes, shared by the build container and services (as gitlab-runner does). */
  private commonMounts(): string[] {
    const mounts = [`${this.o.buildsDir}:${this.o.buildsDir}`];
    for (const v of this.o.settings.volumes) {
      const spec = parseVolume(v);
      if (spec.kind === 'bind') mounts.push(spec.spec);
      else mounts.push(`${this.jobVolumes.get(spec.containerPath) ?? ''}:${spec.containerPath}`);
    }
    return mounts;
  }

  private pullRequest(image: string, policies: readonly PullPolicy[], platform: string | undefined): PullRequest {
    const useJobConfig = this.pullConfigDir !== undefined && coversRegistry(this.o.pullAuth, registryOf(image));
    const r: PullRequest = { image, policies };
    if (platform !== undefined) r.platform = platform;
    if (useJobConfig) r.dockerConfigDir = this.pullConfigDir;
    return r;
  }

  /** Env file of the build container and the job's Docker configs, in the job's private directory. */
  private async writePrivateFiles(): Promise<void> {
    const { shell, pullAuth, pushAuth, containers } = this.o;
    await shell.writePrivateFile(this.buildEnvFile, envFileContent(containers.environment));
    if (!isEmptyAuthConfig(pullAuth)) {
      const dir = posix.join(shell.runDir, 'pull-docker-config');
      await shell.check(`mkdir -m 700 ${shellQuote(dir)}`, 'could not create the pull credentials directory');
      await shell.writePrivateFile(posix.join(dir, 'config.json'), renderDockerConfig(pullAuth));
      this.pullConfigDir = dir;
    }
    if (!isEmptyAuthConfig(pushAuth)) {
      const dir = posix.join(shell.runDir, 'push-docker-config');
      await shell.check(`mkdir -m 700 ${shellQuote(dir)}`, 'could not create the push credentials directory');
      const file = posix.join(dir, 'config.json');
      await shell.writePrivateFile(file, renderDockerConfig(pushAuth));
      this.pushConfigFile = file;
    }
  }
}
