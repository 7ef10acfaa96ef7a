// The GitLab runners this coordinator serves (config `runners`, compiled: the deployment's own runner of
// gitlab.token first when it keeps executors, then each of `runners:`): for each, the token an earlier task
// may have rotated, its identity in GitLab (verified or registered, retried while GitLab is away) and what
// it tells GitLab about itself. Every runner must start: a token GitLab refuses stops the start (exit 2),
// since its jobs would otherwise wait in GitLab for a runner that never asks.

import type { FleetConfig, RunnerConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { RunnerApi, RunnerIdentity, RunnerInfo } from '../gitlab/index.js';
import { createRunnerIdentity } from './identity.js';
import { RotatedToken, rotatedTokenSecretStore } from './rotated-token.js';
import { startIdentity } from './start-identity.js';

export interface ServedRunner {
  readonly config: RunnerConfig;
  readonly configuredToken: string;
  readonly identity: RunnerIdentity;
  readonly rotated: RotatedToken;
  /** What its job requests say of it: the features of its own executors. */
  readonly info: RunnerInfo;
}

export type StartRunnersResult =
  | { kind: 'started'; runners: ServedRunner[] }
  /** A runner's token GitLab refused: a config error (exit 2). */
  | { kind: 'refused'; runner: string; reason: string }
  /** The store of a rotated token refuses to be read (permissions, KMS): a config error (exit 2). */
  | { kind: 'unreadable'; runner: string; reason: string }
  | { kind: 'stopped' };

export interface StartRunnersOptions {
  api: RunnerApi;
  clock: Clock;
  logger: Logger;
  systemId: string;
  stateDir: string;
  /** The runner info for a set of executor styles (what the coordinator advertises). */
  infoFor: (styles: ReadonlyArray<'shell' | 'docker'>) => RunnerInfo;
  /** Every token a runner gets (a rotated one read back, one GitLab gives at registration or rotation), as
   *  soon as it is known: the log masks them from then on. */
  onToken?: (token: string) => void;
  /** Read first (under the lease), then GitLab is asked: the health endpoint's phases. */
  onPhase: (phase: 'reading_token' | 'waiting_for_gitlab') => void;
  signal: AbortSignal;
}

/** The token a runner is configured with (the deployment's: gitlab.token or its registration token). */
export function configuredTokenOf(config: FleetConfig, runner: RunnerConfig): string {
  return runner.token ?? config.gitlab.token ?? config.gitlab.registrationToken!;
}

export async function startRunners(config: FleetConfig, o: StartRunnersOptions): Promise<StartRunnersResult> {
  o.onPhase('reading_token');
  const prepared: Array<Omit<ServedRunner, 'identity'> & { identity: RunnerIdentity }> = [];
  for (const r of config.runners) {
    const configuredToken = configuredTokenOf(config, r);
    const rotated = new RotatedToken({ store: rotatedTokenSecretStore(config, o.stateDir, process.env, r.token === undefined ? undefined : r.name), configuredToken, clock: o.clock, logger: o.logger });
    let persisted;
    try {
      // A legacy registration token registers anew at every start: nothing was rotated to read back.
      persisted = r.token === undefined && config.gitlab.token === undefined ? undefined : await rotated.load(o.signal);
    } catch (e) {
      if (!(e instanceof ConfigError)) return { kind: 'stopped' };
      return { kind: 'unreadable', runner: r.name, reason: e.message };
    }
    if (persisted) o.onToken?.(persisted.token);
    const styles = r.executors.map((name) => config.executors.find((e) => e.name === name)!.style);
    const info = o.infoFor(styles);
    const identity = createRunnerIdentity(config, { api: o.api, clock: o.clock, logger: o.logger, systemId: o.systemId, info, ...(persisted && { persisted }) }, r);
    identity.onTokenRotated((e) => {
      o.onToken?.(e.token);
      rotated.save({ token: e.token, obtainedAt: e.obtainedAt, ...(e.expiresAt !== undefined && { expiresAt: e.expiresAt }) }).catch(() => undefined);
    });
    prepared.push({ config: r, configuredToken, identity, rotated, info });
  }
  o.onPhase('waiting_for_gitlab');
  const results = await Promise.all(prepared.map((p) => startIdentity(p.identity, { url: config.gitlab.url, clock: o.clock, logger: o.logger.child({ runner: p.config.name }), signal: o.signal })));
  const refused = results.findIndex((r) => r.kind === 'refused');
  if (refused >= 0 || results.some((r) => r.kind === 'stopped')) {
    // A refused token: the runners that did start leave GitLab again, as this coordinator will not ask for
    // their jobs. A start that was stopped (SIGTERM, the lease lost) leaves them: a coordinator that holds
    // the lease now shares their runner managers (the same system_id).
    if (refused >= 0 && !o.signal.aborted) await Promise.all(prepared.map((p, i) => (results[i]!.kind === 'started' ? p.identity.stop().catch(() => undefined) : undefined)));
    const r = results[refused];
    if (r?.kind === 'refused') return { kind: 'refused', runner: prepared[refused]!.config.name, reason: r.reason };
    return { kind: 'stopped' };
  }
  for (const p of prepared) o.onToken?.(p.identity.token);
  return { kind: 'started', runners: prepared };
}
