// The runner identity of this deployment as the config describes it: the token model, the registration
// parameters of a legacy runner, the system_id, and a token rotated by an earlier task.

import type { FleetConfig, RunnerConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { buildFeatures, registrationInfo, RunnerIdentity, type RunnerApi, type RunnerInfo, type RunnerTokenState } from '../gitlab/index.js';

export interface IdentityDeps {
  api: RunnerApi;
  clock: Clock;
  logger: Logger;
  systemId: string;
  info: RunnerInfo;
  /** A glrt- token an earlier task rotated (see rotated-token.ts). */
  persisted?: RunnerTokenState;
}

/** The identity of `runner` (default: the deployment's own, gitlab.token or gitlab.registrationToken); a
 *  runner of `runners:` always has a runner authentication token. */
export function createRunnerIdentity(config: FleetConfig, d: IdentityDeps, runner?: RunnerConfig): RunnerIdentity {
  const legacy = runner?.token === undefined && config.gitlab.registrationToken !== undefined;
  return new RunnerIdentity({
    api: d.api,
    clock: d.clock,
    configuredToken: runner?.token ?? config.gitlab.token ?? config.gitlab.registrationToken!,
    model: legacy ? 'registration' : 'runner-authentication',
    systemId: d.systemId,
    info: d.info,
    ...(legacy && {
      registration: {
        description: config.gitlab.runner.description,
        tags: [...config.gitlab.runner.tags],
        runUntagged: config.gitlab.runner.runUntagged,
        locked: config.gitlab.runner.locked,
        ...(config.gitlab.runner.maximumTimeoutS !== undefined && { maximumTimeoutSec: config.gitlab.runner.maximumTimeoutS }),
        info: registrationInfo(d.info, buildFeatures([])),
      },
    }),
    ...(d.persisted && { persisted: d.persisted }),
    deleteManagerOnStop: config.gitlab.unregisterOnStop,
    logger: d.logger,
  });
}
