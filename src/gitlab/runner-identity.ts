// Who we are to GitLab: the runner token for the configured token model, and its rotation
// (docs/gitlab-protocol.md §1). Starting verifies (glrt-) or registers (legacy); stopping unregisters what we registered.

import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { IssuedToken, RegisterParams } from './api-types.js';
import { GitLabApiError } from './errors.js';
import type { RunnerInfo } from './info.js';
import type { RunnerApi } from './runner-api.js';
import { tokenModel, type TokenModel } from './token-model.js';

/** gitlab-runner rotates at 75 % of the token's lifetime. */
export const TOKEN_ROTATION_FACTOR = 0.75;

export function rotationDueAt(obtainedAt: number, expiresAt: number): number {
  return obtainedAt + TOKEN_ROTATION_FACTOR * (expiresAt - obtainedAt);
}

export interface RunnerTokenState {
  token: string;
  /** ms epoch when we got it. */
  obtainedAt: number;
  /** ms epoch when it stops working; undefined = never. */
  expiresAt?: number;
}

/** Given to rotation listeners. `token` is there to persist it but is not enumerable, so logging the
 *  event object (`logger.info({ ...event })`, JSON.stringify) never prints it. */
export interface TokenRotatedEvent {
  readonly token: string;
  readonly obtainedAt: number;
  readonly expiresAt?: number;
}

export interface RunnerIdentityOptions {
  api: Pick<RunnerApi, 'verify' | 'register' | 'unregister' | 'deleteManager' | 'resetToken'>;
  clock: Pick<Clock, 'now'>;
  /** The token from the config file: glrt-… or a legacy registration token. */
  configuredToken: string;
  /** Overrides the model told from the token's prefix: a legacy runner token registered earlier (no
   *  `glrt-` prefix) is verified like a glrt- token, never registered again. */
  model?: TokenModel;
  systemId: string;
  /** Full info (with executor features) for verify: Rails stores info.features from it. */
  info: RunnerInfo;
  /** Legacy model only: registration parameters; `info` should carry network features only. */
  registration?: RegisterParams;
  /** glrt- model only: a token saved by an earlier rotation, used instead of the configured one. */
  persisted?: RunnerTokenState;
  /** glrt- model: also DELETE /runners/managers at stop, so short-lived coordinators leave no managers. */
  deleteManagerOnStop?: boolean;
  /** Wait after a failed rotation before trying again. Default 60 s. */
  rotationRetryMs?: number;
  logger?: Logger;
}

export class RunnerIdentity {
  readonly model: TokenModel;
  private state: RunnerTokenState | undefined;
  private id: number | undefined;
  private rotating: Promise<boolean> | undefined;
  private nextRotationAttempt = 0;
  private readonly listeners = new Set<(e: TokenRotatedEvent) => void>();
  private readonly logger: Logger;

  constructor(private readonly o: RunnerIdentityOptions) {
    this.model = o.model ?? tokenModel(o.configuredToken);
    this.logger = (o.logger ?? silentLogger).child({ component: 'runner-identity' });
  }

  /** The runner token to use now. Read it for every request: rotation swaps it. */
  get token(): string {
    if (!this.state) throw new Error('RunnerIdentity.start() has not completed');
    return this.state.token;
  }

  get runnerId(): number | undefined {
    return this.id;
  }

  get tokenState(): Readonly<RunnerTokenState> | undefined {
    return this.state && { ...this.state };
  }

  /** glrt-: POST /runners/verify (never POST /runners). Legacy: POST /runners with the registration token. */
  async start(signal?: AbortSignal): Promise<void> {
    const now = this.o.clock.now();
    const opts = signal ? { signal } : {};
    if (this.model === 'runner-authentication') {
      let candidate = this.o.persisted ?? { token: this.o.configuredToken, obtainedAt: now };
      let v;
      try {
        v = await this.o.api.verify(candidate.token, this.o.systemId, this.o.info, opts);
      } catch (e) {
        // A token this process rotated earlier and that GitLab no longer knows (the runner was reset or
        // recreated): the configured token is the one to trust now.
        if (!(e instanceof GitLabApiError && e.kind === 'forbidden') || candidate.token === this.o.configuredToken) throw e;
        this.logger.warn({}, 'the rotated runner token saved by an earlier run was refused; verifying the configured token');
        candidate = { token: this.o.configuredToken, obtainedAt: now };
        v = await this.o.api.verify(candidate.token, this.o.systemId, this.o.info, opts);
      }
      this.id = v.id;
      const expiresAt = v.tokenExpiresAt ?? candidate.expiresAt;
      this.state = { token: v.token, obtainedAt: candidate.obtainedAt, ...(expiresAt !== undefined ? { expiresAt } : {}) };
      this.logger.info({ runnerId: v.id, expiresAt, legacyResponse: v.legacyResponse }, 'runner token verified');
      return;
    }
    const params: RegisterParams = this.o.registration ?? { info: this.o.info };
    const r = await this.o.api.register(this.o.configuredToken, params, opts);
    this.id = r.id;
    this.state = toState(r, now);
    this.logger.info({ runnerId: r.id, expiresAt: r.tokenExpiresAt }, 'runner registered');
  }

  /** Legacy: DELETE /runners for the runner we registered. glrt-: nothing, or DELETE /runners/managers. */
  async stop(signal?: AbortSignal): Promise<void> {
    if (!this.state) return;
    const opts = signal ? { signal } : {};
    if (this.model === 'registration') {
      await this.o.api.unregister(this.state.token, opts);
      this.logger.info({ runnerId: this.id }, 'runner unregistered');
      this.state = undefined;
    } else if (this.o.deleteManagerOnStop) {
      const r = await this.o.api.deleteManager(this.state.token, this.o.systemId, opts);
      this.logger.info({ runnerId: this.id, result: r }, 'runner manager removed');
    }
  }

  /** When rotation is due (ms epoch), or undefined for a token that does not expire. */
  rotationDueAt(): number | undefined {
    const s = this.state;
    return s?.expiresAt === undefined ? undefined : rotationDueAt(s.obtainedAt, s.expiresAt);
  }

  isRotationDue(): boolean {
    const due = this.rotationDueAt();
    return due !== undefined && this.o.clock.now() >= due;
  }

  /** Resets the token when due and swaps it in one step; listeners hear of it. Concurrent calls share
   *  one reset. Resolves true when the token changed. A failure is thrown and retried no sooner than
   *  `rotationRetryMs` later. */
  rotateIfDue(signal?: AbortSignal): Promise<boolean> {
    if (this.rotating) return this.rotating;
    if (!this.isRotationDue() || this.o.clock.now() < this.nextRotationAttempt) return Promise.resolve(false);
    this.rotating = this.rotate(signal).finally(() => (this.rotating = undefined));
    return this.rotating;
  }

  /** Subscribes to rotations (persist the new token; log without it). Returns an unsubscribe function. */
  onTokenRotated(listener: (e: TokenRotatedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async rotate(signal?: AbortSignal): Promise<boolean> {
    const old = this.state!;
    let issued: IssuedToken;
    try {
      issued = await this.o.api.resetToken(old.token, signal ? { signal } : {});
    } catch (e) {
      this.nextRotationAttempt = this.o.clock.now() + (this.o.rotationRetryMs ?? 60_000);
      this.logger.warn({ error: errorMessage(e) }, 'runner token rotation failed');
      throw e;
    }
    // A single assignment: every later read of `token` sees the new one, never a mix.
    this.state = toState(issued, this.o.clock.now());
    const event = rotatedEvent(this.state);
    this.logger.info({ obtainedAt: event.obtainedAt, expiresAt: event.expiresAt }, 'runner token rotated');
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (e) {
        this.logger.error({ error: errorMessage(e) }, 'token rotation listener failed');
      }
    }
    return true;
  }
}

function toState(t: IssuedToken, now: number): RunnerTokenState {
  return t.tokenExpiresAt === undefined ? { token: t.token, obtainedAt: now } : { token: t.token, obtainedAt: now, expiresAt: t.tokenExpiresAt };
}

function rotatedEvent(s: RunnerTokenState): TokenRotatedEvent {
  const e: { obtainedAt: number; expiresAt?: number } = { obtainedAt: s.obtainedAt };
  if (s.expiresAt !== undefined) e.expiresAt = s.expiresAt;
  Object.defineProperty(e, 'token', { value: s.token, enumerable: false });
  return e as TokenRotatedEvent;
}
