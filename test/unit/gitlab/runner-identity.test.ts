import { describe, expect, it } from 'vitest';
import type { IssuedToken, RegisterParams, VerifyResult } from '../../../src/gitlab/api-types.js';
import { GitLabApiError, TokenModelError } from '../../../src/gitlab/errors.js';
import { buildRunnerInfo } from '../../../src/gitlab/info.js';
import { RunnerApi } from '../../../src/gitlab/runner-api.js';
import { rotationDueAt, RunnerIdentity, type RunnerIdentityOptions, type TokenRotatedEvent } from '../../../src/gitlab/runner-identity.js';
import { tokenModel } from '../../../src/gitlab/token-model.js';

const HOUR = 3_600_000;
const info = buildRunnerInfo({ version: '0.1.0', platform: 'linux', arch: 'x64', features: {} });

function fakeApi() {
  const calls: string[] = [];
  let resets = 0;
  const api: RunnerIdentityOptions['api'] & { calls: string[] } = {
    calls,
    async verify(token): Promise<VerifyResult> {
      calls.push(`verify ${token}`);
      return { id: 7, token, tokenExpiresAt: 100 * HOUR, legacyResponse: false };
    },
    async register(token, _p: RegisterParams) {
      calls.push(`register ${token}`);
      return { id: 8, token: 'legacy-runner-token-1', tokenExpiresAt: 10 * HOUR };
    },
    async unregister(token) {
      calls.push(`unregister ${token}`);
    },
    async deleteManager(token, systemId) {
      calls.push(`deleteManager ${token} ${systemId}`);
      return 'deleted' as const;
    },
    async resetToken(token): Promise<IssuedToken> {
      calls.push(`reset ${token}`);
      resets++;
      return { token: `glrt-rotated-${resets}`, tokenExpiresAt: 200 * HOUR };
    },
  };
  return api;
}

function clock(t = 0) {
  return { t, now() { return this.t; } };
}

describe('token models', () => {
  it('tells glrt- tokens from legacy registration tokens by the literal prefix', () => {
    expect(tokenModel('glrt-abc')).toBe('runner-authentication');
    expect(tokenModel('glrtr-abc')).toBe('registration');
    expect(tokenModel('GR1348941abc')).toBe('registration');
  });

  it('a glrt- token is only verified: never POST /runners, never DELETE /runners', async () => {
    const api = fakeApi();
    const id = new RunnerIdentity({ api, clock: clock(), configuredToken: 'glrt-configured', systemId: 's_0123456789ab', info });
    await id.start();
    await id.stop();
    expect(api.calls).toEqual(['verify glrt-configured']);
    expect(id.token).toBe('glrt-configured');
    expect(id.runnerId).toBe(7);
  });

  it('a glrt- runner can remove its own manager at stop', async () => {
    const api = fakeApi();
    const id = new RunnerIdentity({ api, clock: clock(), configuredToken: 'glrt-configured', systemId: 's_0123456789ab', info, deleteManagerOnStop: true });
    await id.start();
    await id.stop();
    expect(api.calls).toEqual(['verify glrt-configured', 'deleteManager glrt-configured s_0123456789ab']);
  });

  it('a legacy registration token registers at start and unregisters at stop', async () => {
    const api = fakeApi();
    const id = new RunnerIdentity({ api, clock: clock(), configuredToken: 'GR1348941registration', systemId: 's_0123456789ab', info });
    await id.start();
    expect(id.token).toBe('legacy-runner-token-1');
    await id.stop();
    expect(api.calls).toEqual(['register GR1348941registration', 'unregister legacy-runner-token-1']);
  });

  it('uses a persisted rotated token instead of the configured one', async () => {
    const api = fakeApi();
    const id = new RunnerIdentity({
      api,
      clock: clock(50 * HOUR),
      configuredToken: 'glrt-configured',
      systemId: 's_0123456789ab',
      info,
      persisted: { token: 'glrt-saved', obtainedAt: 40 * HOUR, expiresAt: 100 * HOUR },
    });
    await id.start();
    expect(api.calls).toEqual(['verify glrt-saved']);
    expect(id.rotationDueAt()).toBe(40 * HOUR + 0.75 * 60 * HOUR);
  });

  it('falls back to the configured token when GitLab refuses the persisted one; other errors are not retried', async () => {
    const api = fakeApi();
    const verify = api.verify.bind(api);
    api.verify = async (token, ...rest) => {
      if (token === 'glrt-saved') {
        api.calls.push(`verify ${token}`);
        throw new GitLabApiError('forbidden', 403, 'POST /runners/verify', 'runner token is invalid');
      }
      return verify(token, ...rest);
    };
    const id = new RunnerIdentity({
      api, clock: clock(50 * HOUR), configuredToken: 'glrt-configured', systemId: 's_0123456789ab', info,
      persisted: { token: 'glrt-saved', obtainedAt: 40 * HOUR, expiresAt: 100 * HOUR },
    });
    await id.start();
    expect(api.calls).toEqual(['verify glrt-saved', 'verify glrt-configured']);
    expect(id.token).toBe('glrt-configured');

    const down = fakeApi();
    down.verify = async () => {
      throw new GitLabApiError('http', 0, 'POST /runners/verify', 'no answer');
    };
    const id2 = new RunnerIdentity({
      api: down, clock: clock(50 * HOUR), configuredToken: 'glrt-configured', systemId: 's_0123456789ab', info,
      persisted: { token: 'glrt-saved', obtainedAt: 40 * HOUR, expiresAt: 100 * HOUR },
    });
    await expect(id2.start()).rejects.toThrow('no answer');
  });

  it('the API itself refuses the wrong endpoint for a glrt- token', async () => {
    const api = new RunnerApi({ url: 'http://127.0.0.1:1', requester: { do: () => Promise.reject(new Error('no HTTP expected')) }, userAgent: 'x' });
    await expect(api.register('glrt-abc', { info })).rejects.toBeInstanceOf(TokenModelError);
    await expect(api.unregister('glrt-abc')).rejects.toBeInstanceOf(TokenModelError);
  });
});

describe('token rotation', () => {
  it('is due at obtained_at + 0.75 × lifetime', () => {
    expect(rotationDueAt(0, 100 * HOUR)).toBe(75 * HOUR);
    expect(rotationDueAt(10 * HOUR, 50 * HOUR)).toBe(40 * HOUR);
  });

  it('rotates once due, swaps the token, and tells listeners without exposing the token in logs', async () => {
    const api = fakeApi();
    const c = clock(0);
    const id = new RunnerIdentity({ api, clock: c, configuredToken: 'glrt-configured', systemId: 's_0123456789ab', info });
    await id.start(); // obtained at 0, expires at 100 h
    expect(id.rotationDueAt()).toBe(75 * HOUR);
    const events: TokenRotatedEvent[] = [];
    id.onTokenRotated((e) => events.push(e));

    c.t = 75 * HOUR - 1;
    expect(await id.rotateIfDue()).toBe(false);
    expect(id.token).toBe('glrt-configured');

    c.t = 75 * HOUR;
    const [a, b] = await Promise.all([id.rotateIfDue(), id.rotateIfDue()]);
    expect([a, b]).toEqual([true, true]);
    expect(api.calls.filter((x) => x.startsWith('reset'))).toEqual(['reset glrt-configured']);
    expect(id.token).toBe('glrt-rotated-1');
    expect(events).toHaveLength(1);
    expect(events[0]!.token).toBe('glrt-rotated-1');
    expect(JSON.stringify(events[0])).not.toContain('glrt-');
    expect({ ...events[0] }).toEqual({ obtainedAt: 75 * HOUR, expiresAt: 200 * HOUR });
    // next rotation from the new lifetime
    expect(id.rotationDueAt()).toBe(75 * HOUR + 0.75 * 125 * HOUR);
  });

  it('never rotates a token without expiry; retries a failed reset only after a pause', async () => {
    const api = fakeApi();
    api.verify = async (token) => ({ token, legacyResponse: true });
    const c = clock(0);
    const id = new RunnerIdentity({ api, clock: c, configuredToken: 'glrt-x', systemId: 's_0123456789ab', info, rotationRetryMs: 1000 });
    await id.start();
    expect(id.rotationDueAt()).toBeUndefined();
    expect(await id.rotateIfDue()).toBe(false);

    const api2 = fakeApi();
    api2.resetToken = async () => {
      throw new Error('403');
    };
    const id2 = new RunnerIdentity({ api: api2, clock: c, configuredToken: 'glrt-x', systemId: 's_0123456789ab', info, rotationRetryMs: 1000 });
    await id2.start();
    c.t = 80 * HOUR;
    await expect(id2.rotateIfDue()).rejects.toThrow('403');
    expect(await id2.rotateIfDue()).toBe(false);
    c.t += 1000;
    await expect(id2.rotateIfDue()).rejects.toThrow('403');
    expect(id2.token).toBe('glrt-x');
  });
});
