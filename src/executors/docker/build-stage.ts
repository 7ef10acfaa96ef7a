// A user stage (step_*, after_script) in a fresh container of the job image, as gitlab-runner does:
// the image's ENTRYPOINT runs (docker:cli's sets DOCKER_HOST and TLS for DinD), then the shell
// detection, which reads the stage script from stdin. Predefined stages run on the machine's own shell.
//
// One script on the machine does it all: create, start attached with the script on stdin, note whether
// the container ever started (a container that cannot start is the runner's failure, not the script's),
// remove it. Stopping the stage removes the container (`docker rm -f`) besides killing that script.

import { randomBytes } from 'node:crypto';

import type { Stage } from '../../core/index.js';
import type { StageTransport } from '../job-session.js';
import { runRemoteStage, shellQuote, type StageExit } from '../remote-shell.js';
import type { TraceWriter } from '../trace-lines.js';
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

export interface DockerStageTransportOptions {
  shell: MachineShell;
  trace: TraceWriter;
  /** Prefix of the job's container names. */
  prefix: string;
  buildContainer(name: string): BuildContainer;
  killGraceMs: number;
  /** Runs before the first user stage (hands the checkout to the image's user)… */
  beforeUserStages?: () => Promise<void>;
  /** …and before the first machine stage after them (hands it back). */
  afterUserStages?: () => Promise<void>;
}

export class DockerStageTransport implements StageTransport {
  private n = 0;
  private inUserStages = false;

  constructor(private readonly o: DockerStageTransportOptions) {}

  async runStage(stage: Stage, stop: AbortSignal): Promise<StageExit> {
    const n = ++this.n;
    const safe = stage.name.replace(/[^A-Za-z0-9_.-]/g, '_');
    const pidFile = `${this.o.shell.runDir}/stage-${n}-${safe}.pid`;
    if (stage.phase === 'predefined') {
      if (this.inUserStages) {
        this.inUserStages = false;
        await this.o.afterUserStages?.();
      }
      return runRemoteStage({ conn: this.o.shell.conn, script: stage.script, pidFile, trace: this.o.trace, stop, killGraceMs: this.o.killGraceMs });
    }
    if (!this.inUserStages) {
      this.inUserStages = true;
      await this.o.beforeUserStages?.();
    }
    const container = this.o.buildContainer(`${this.o.prefix}-${n}-${safe}`);
    const marker = `${this.o.shell.runDir}/stage-${n}.not-started`;
    const remove = () => {
      void this.o.shell.exec(`docker rm -f -v ${shellQuote(container.name)} >/dev/null 2>&1; true`, 60_000).catch(() => undefined);
    };
    stop.addEventListener('abort', remove, { once: true });
    try {
      const exit = await runRemoteStage({
        conn: this.o.shell.conn,
        script: buildStageScript(container, stage.script, marker),
        pidFile,
        trace: this.o.trace,
        stop,
        killGraceMs: this.o.killGraceMs,
      });
      if (!stop.aborted && !('exitCode' in exit && exit.exitCode === 0)) {
        const r = await this.o.shell.exec(`test -e ${shellQuote(marker)}`);
        if (r.exitCode === 0) throw new BuildContainerError(stage.name);
      }
      return exit;
    } finally {
      stop.removeEventListener('abort', remove);
    }
  }
}
