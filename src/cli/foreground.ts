// `fleetrunner run` in the foreground: process signals in, one coordinator out. SIGTERM, SIGINT and SIGQUIT
// stop it (gitlab-runner's graceful stop; a second one cuts running jobs off), SIGHUP reloads the config.

import type { FleetConfig } from '../config/index.js';
import { errorMessage } from '../core/errors.js';
import { startCoordinator, type CoordinatorHandle } from './run.js';

/** `fleetrunner run`: the coordinator in the foreground until SIGTERM/SIGINT/SIGQUIT (gitlab-runner's graceful stop). Signals are handled from
 *  the first moment: one that arrives during start-up (verify, garbage collection, recovery) is applied
 *  as soon as the coordinator exists, instead of killing the process half-way. */
export async function runCoordinator(config: FleetConfig, o: { reloadConfig?: () => FleetConfig | Promise<FleetConfig>; source?: string } = {}): Promise<number> {
  let handle: CoordinatorHandle | undefined;
  let early = 0;
  const starting = new AbortController();
  const onSignal = () => {
    if (handle) handle.stop();
    else {
      early++;
      starting.abort(new Error('stop requested during start-up'));
    }
  };
  // SIGHUP reloads the config file, as gitlab-runner does; it never stops the coordinator.
  const onHup = () => {
    const reload = o.reloadConfig;
    if (!reload) return;
    void (async () => reload())().then(
      (next) => handle?.reload(next),
      (e: unknown) => {
        if (handle) handle.reloadFailed(e);
        else process.stderr.write(`fleetrunner: config reload failed, the running config stays in force: ${errorMessage(e)}\n`);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGQUIT', onSignal);
  process.on('SIGHUP', onHup);
  try {
    handle = await startCoordinator(config, { startSignal: starting.signal, ...(o.source !== undefined && { configSource: o.source }) });
    for (let i = 0; i < early; i++) handle.stop();
    return await handle.done;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGQUIT', onSignal);
    process.off('SIGHUP', onHup);
  }
}
