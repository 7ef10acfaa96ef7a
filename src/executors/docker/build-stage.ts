// The docker style's stages, detached from the connection like the shell style's (detached-transport.ts):
// every stage runs in its own process group on the machine with its output to a file, so a dropped connection or
// a replaced coordinator does not stop it, and a successor follows it by offset.
// - Predefined stages (sources, cache, artifacts, cleanup) run in the machine's own shell.
// - A user stage (step_*, after_script) runs in a fresh container of the job image, as gitlab-runner does:
//   the image's ENTRYPOINT runs (docker:cli's sets DOCKER_HOST and TLS for DinD), then the shell detection,
//   which reads the stage script from stdin. The stage's script on the machine creates the container, starts
//   it attached with the script on stdin, notes whether it ever started (a container that cannot start is the
//   runner's failure, not the script's), and removes it. Stopping the stage removes the container
//   (`docker rm -f`) besides killing that script. Container names follow from the job's prefix and the
//   stage's number, so a successor stops the same container.

import { randomBytes } from 'node:crypto';

import type { Stage } from '../../core/index.js';
import type { DetachedTransport } from '../detached-transport.js';
import type { StageProgress, StageTransport } from '../job-session.js';
import { shellQuote, type StageExit } from '../remote-shell.js';
import { buildContainerArgs, commandLine, type BuildContainer } from './docker-args.js';
import type { MachineShell } from './machine-shell.js';

/** The container of a stage could not be created or started: a system failure with Docker's reason. */
export class BuildContainerError extends Error {
  constructor(stage: string) {
    super(`the build container for ${stage} could not be created or started (Docker's error is above)`);
    this.name = 'BuildContainerError';
  }
}

export function buildStageScript(container: BuildContainer, script: string, notStartedMarker: string): string {
  let eof: string;
  do eof = `__FLEETRUNNER_STAGE_${randomBytes(8).toString('hex')}__`;
  while (script.includes(eof));
  const name = shellQuote(container.name);
  const marker = shellQuote(notStartedMarker);
  return [
    `${commandLine(buildContainerArgs(container))} >/dev/null || { : > ${marker}; exit 1; }`,
    `${commandLine(['docker', 'start', '-a', '-i', container.name])} <<'${eof}'`,
    script.endsWith('\n') ? script.slice(0, -1) : script,
    eof,
    'rc=$?',
    `if [ "$(docker inspect --format '{{.State.StartedAt}}' ${name} 2>/dev/null)" = 0001-01-01T00:00:00Z ]; then : > ${marker}; fi`,
    `docker rm -f -v ${name} >/dev/null 2>&1`,
    'exit "$rc"',
  ].join('\n');
}

/** A stage's container name: the job's prefix, the stage's number and name. */
export function stageContainerName(prefix: string, seq: number, stageName: string): string {
  return `${prefix}-${seq}-${stageName.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

export interface DockerStageTransportOptions {
  /** Runs (or follows) every stage detached, with the job's records on the machine. */
  detached: DetachedTransport;
  /** Housekeeping on the machine (container removal, the not-started marker). */
  shell: MachineShell;
  /** Prefix of the job's container names. */
  prefix: string;
  buildContainer(name: string): BuildContainer;
  /** Runs before the first user stage (hands the checkout to the image's user)… `startedBefore`: an earlier
   *  coordinator already did (the hook only records it). */
  beforeUserStages?: (startedBefore: boolean) => Promise<void>;
  /** …and before the first machine stage after them (hands it back). */
  afterUserStages?: (startedBefore: boolean) => Promise<void>;
}

export class DockerStageTransport implements StageTransport {
  private inUserStages = false;

  constructor(private readonly o: DockerStageTransportOptions) {}

  async runStage(stage: Stage, stop: AbortSignal, progress: StageProgress): Promise<StageExit> {
    const before = this.o.detached.startedBefore(progress);
    if (stage.phase === 'predefined') {
      if (this.inUserStages) {
        this.inUserStages = false;
        await this.o.afterUserStages?.(before);
      }
      return this.o.detached.runStage(stage, stop, progress);
    }
    if (!this.inUserStages) {
      this.inUserStages = true;
      await this.o.beforeUserStages?.(before);
    }
    const container = this.o.buildContainer(stageContainerName(this.o.prefix, progress.seq, stage.name));
    const marker = `${this.o.shell.runDir}/stage-${progress.seq}.not-started`;
    const remove = () => {
      void this.o.shell.exec(`docker rm -f -v ${shellQuote(container.name)} >/dev/null 2>&1; true`, 60_000).catch(() => undefined);
    };
    stop.addEventListener('abort', remove, { once: true });
    try {
      const exit = await this.o.detached.runStage({ ...stage, script: buildStageScript(container, stage.script, marker) }, stop, progress);
      if (!progress.replayed && !stop.aborted && !('exitCode' in exit && exit.exitCode === 0)) {
        const r = await this.o.shell.exec(`test -e ${shellQuote(marker)}`);
        if (r.exitCode === 0) throw new BuildContainerError(stage.name);
      }
      return exit;
    } finally {
      stop.removeEventListener('abort', remove);
    }
  }
}
