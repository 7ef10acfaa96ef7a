// Getting an image onto the machine per its pull policies (always / if-not-present / never, tried in
// order). Pull output stays out of the trace unless the pull fails; the failure names the image and
// Docker's own message, and ends the job as image_pull_failure.

import type { FailureReason } from '../../core/index.js';
import { shellQuote } from '../remote-shell.js';
import type { TraceWriter } from '../trace-lines.js';
import { CapturedOutput, lastLines, type MachineShell } from './machine-shell.js';
import type { PullPolicy } from './options.js';
import { list } from './pull-policy.js';

/** Preparing the job's containers failed in a way GitLab should see with this reason. */
export class PrepareFailure extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'PrepareFailure';
  }
}

/** The prepare step was stopped (cancel, abort, deadline): the caller knows why from its signal. */
export class PrepareStopped extends Error {
  constructor() {
    super('stopped');
    this.name = 'PrepareStopped';
  }
}

export interface PullRequest {
  image: string;
  policies: readonly PullPolicy[];
  platform?: string;
  /** DOCKER_CONFIG directory with this job's credentials for the image's registry, when it has some. */
  dockerConfigDir?: string;
}

export async function ensureImage(shell: MachineShell, trace: TraceWriter, r: PullRequest, stop: AbortSignal): Promise<void> {
  const img = shellQuote(r.image);
  let lastError = '';
  for (const policy of r.policies) {
    if (stop.aborted) throw new PrepareStopped();
    if (policy !== 'always') {
      const found = await shell.exec(`docker image inspect --format '{{.Id}}' ${img}`);
      if (found.exitCode === 0) {
        trace.line(`Using locally found image version due to "${policy}" pull policy`);
        trace.line(`Using docker image ${found.stdout.trim()} for ${r.image} ...`);
        return;
      }
      if (policy === 'never') {
        lastError = `image ${JSON.stringify(r.image)} is not present on the machine and the pull policy is "never"`;
        continue;
      }
    }
    trace.line(`Pulling docker image ${r.image} ...`);
    const env = r.dockerConfigDir !== undefined ? `DOCKER_CONFIG=${shellQuote(r.dockerConfigDir)} ` : '';
    const platform = r.platform ? `--platform ${shellQuote(r.platform)} ` : '';
    const out = new CapturedOutput();
    const exit = await shell.run(`${env}docker pull ${platform}${img}`, out, stop, 'pull');
    if (stop.aborted) throw new PrepareStopped();
    if ('exitCode' in exit && exit.exitCode === 0) {
      const id = await shell.exec(`docker image inspect --format '{{.Id}}' ${img}`);
      trace.line(`Using docker image ${id.stdout.trim()} for ${r.image} ...`);
      return;
    }
    lastError = lastLines(out.toString(), 3) || ('exitCode' in exit ? `docker pull exited with ${exit.exitCode}` : `docker pull stopped by ${exit.signal}`);
    if (policy !== r.policies[r.policies.length - 1]) trace.warning(`Failed to pull image with policy "${policy}": ${lastError}`);
  }
  throw new PrepareFailure(
    'image_pull_failure',
    `failed to pull image ${JSON.stringify(r.image)} with specified policies ${list(r.policies)}: ${lastError.replace(/\s*\n\s*/g, '; ')}`,
  );
}
