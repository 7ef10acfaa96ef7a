// The runner token GitLab gave us in place of the configured one (a glrt- token rotated before it expired),
// kept where the next coordinator task finds it: once rotated, the configured token no longer works, so a
// replacement task that only had the config would be refused (403) and stop.
//
// Where: `gitlab.rotatedToken.ssmParameter` (an SSM SecureString; what a Fargate task, whose disk is empty at
// every start, needs), else `<stateDir>/runner-token.json` (mode 600; hosts that keep their disk). The value
// is bound to the configured token it came from by that token's last six characters (never the whole token):
// a new token in the config makes the saved one irrelevant.
//
// Reading at start: a store that cannot be reached is retried (a line per attempt, like GitLab at start-up);
// one that refuses (permissions, a bad KMS key) stops the start with exit 2 naming the parameter. Saving:
// retried until it worked, newest value first, because the old token stopped working the moment GitLab
// issued the new one.

import { join } from 'node:path';
import type { FleetConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import { ConfigError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SecretStore } from '../core/secret-store.js';
import { backoffDelayMs, type RunnerTokenState } from '../gitlab/index.js';
import { createSsmClient } from '../providers/aws/clients.js';
import { SsmSecretStore } from '../providers/aws/ssm-secret-store.js';
import { FileSecretStore } from '../providers/file-secret-store.js';

const SAVE_BACKOFF = { minMs: 1_000, maxMs: 5 * 60_000, jitter: true } as const;
const LOAD_BACKOFF = { minMs: 1_000, maxMs: 30_000, jitter: true } as const;

/** Errors no retry fixes: the task role may not read or write the parameter, or not use its KMS key. */
const REFUSALS = new Set(['AccessDeniedException', 'AccessDenied', 'UnrecognizedClientException', 'InvalidKeyId', 'ValidationException', 'KMSAccessDeniedException']);

/** `runner`: a runner of `runners:` by name (each keeps its own token); absent: the deployment's own. */
export function tokenFilePath(stateDir: string, runner?: string): string {
  return join(stateDir, runner === undefined ? 'runner-token.json' : `runner-token-${runner}.json`);
}

/** The store `config` names for the rotated token of the deployment's runner, or of `runner` (a runner of
 *  `runners:`: the same parameter name with `-<runner>` appended, or its own file). */
export function rotatedTokenSecretStore(config: FleetConfig, stateDir: string, env: Readonly<Record<string, string | undefined>> = process.env, runner?: string): SecretStore {
  const base = config.gitlab.rotatedToken?.ssmParameter;
  const ssm = base === undefined || runner === undefined ? base : `${base}-${runner}`;
  if (!ssm) return new FileSecretStore(tokenFilePath(stateDir, runner));
  const region = config.gitlab.rotatedToken?.region;
  const kmsKeyId = config.gitlab.rotatedToken?.kmsKeyId;
  return new SsmSecretStore({
    client: createSsmClient({ ...(region !== undefined && { region }), env }),
    name: ssm,
    ...(kmsKeyId !== undefined && { kmsKeyId }),
    description: `fleetrunner ${config.fleet}: the runner token GitLab rotated${runner === undefined ? '' : ` for runner ${runner}`} (managed by fleetrunner)`,
  });
}

export interface RotatedTokenOptions {
  store: SecretStore;
  configuredToken: string;
  clock: Clock;
  logger: Logger;
}

export class RotatedToken {
  private pending: RunnerTokenState | undefined;
  private saving: Promise<void> | undefined;

  constructor(private readonly o: RotatedTokenOptions) {}

  get where(): string {
    return this.o.store.where;
  }

  /** The saved state for the configured token, or undefined (none, unparsable, or another token's).
   *  Retries an unreachable store until `signal` aborts; throws ConfigError when the store refuses. */
  async load(signal?: AbortSignal): Promise<RunnerTokenState | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.readOnce();
      } catch (e) {
        if (refused(e)) throw new ConfigError('gitlab.rotatedToken', `cannot read ${this.where}: ${errorMessage(e)}`);
        const waitMs = backoffDelayMs(attempt, LOAD_BACKOFF);
        this.o.logger.warn({ where: this.where, err: errorMessage(e), attempt: attempt + 1, waitingForS: Math.round(waitMs / 1000) }, 'could not read the saved runner token; retrying');
        await this.o.clock.sleep(waitMs, signal);
      }
    }
  }

  /** One read, no retry (`fleetrunner verify`): throws what the store threw. */
  async readOnce(): Promise<RunnerTokenState | undefined> {
    const text = await this.o.store.get();
    return text === undefined ? undefined : parse(text, this.o.configuredToken);
  }

  /** Saves `state` in the background, retrying until it worked (or `signal` aborts); a newer state
   *  replaces one still waiting. Resolves when the newest state given so far is stored. */
  save(state: RunnerTokenState, signal?: AbortSignal): Promise<void> {
    this.pending = state;
    this.saving ??= this.drain(signal).finally(() => (this.saving = undefined));
    return this.saving;
  }

  /** Forgets the saved token (a legacy runner unregistered at stop). */
  async clear(): Promise<void> {
    await this.o.store.delete();
  }

  private async drain(signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; this.pending; ) {
      const state = this.pending;
      try {
        await this.o.store.put(JSON.stringify({ configuredSuffix: this.o.configuredToken.slice(-6), state }));
        if (this.pending === state) this.pending = undefined;
        this.o.logger.info({ where: this.where }, 'saved the rotated runner token');
        attempt = 0;
      } catch (e) {
        const waitMs = backoffDelayMs(attempt++, SAVE_BACKOFF);
        this.o.logger.error(
          { where: this.where, err: errorMessage(e), attempt, waitingForS: Math.round(waitMs / 1000) },
          'could not save the rotated runner token (the configured one no longer works; a restart before this succeeds needs a new token); retrying',
        );
        await this.o.clock.sleep(waitMs, signal);
      }
    }
  }
}

/** The store refused (permissions, KMS): no retry helps. */
export function refused(e: unknown): boolean {
  const name = (e as { name?: string }).name ?? '';
  return REFUSALS.has(name);
}

function parse(text: string, configuredToken: string): RunnerTokenState | undefined {
  try {
    const saved = JSON.parse(text) as { configuredSuffix?: string; state?: RunnerTokenState };
    if (saved.configuredSuffix !== configuredToken.slice(-6) || typeof saved.state?.token !== 'string') return undefined;
    return saved.state;
  } catch {
    return undefined;
  }
}
