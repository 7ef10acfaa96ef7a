// Registration and identity endpoints (docs/gitlab-protocol.md §1): legacy registration, verify, unregister (runner or
// manager), token reset and the router discovery stub. Rails reads the runner token from the body only.
import type { FakeContext, Route } from './context.js';
import {
  asObject,
  HttpError,
  messageBody,
  optionalString,
  randomToken,
  readJsonObject,
  requireString,
  sendEmpty,
  sendJson,
} from './http-util.js';
import type { RunnerRecord } from './records.js';

function forbidden(): HttpError {
  return new HttpError(403, messageBody(403, 'Forbidden'));
}

function authenticate(ctx: FakeContext, token: string, where: string): RunnerRecord {
  const runner = ctx.runners.authenticate(token, where);
  if (!runner) throw forbidden();
  return runner;
}

export const runnerRoutes: Route[] = [
  {
    method: 'POST',
    pattern: /^\/api\/v4\/runners$/,
    async handler(ctx, req, res) {
      const where = 'POST /runners';
      const body = await readJsonObject(req, where);
      const token = requireString(body, 'token', where);
      if (token.startsWith('glrt-')) {
        ctx.violations.add(30, `${where}: a glrt- authentication token was sent to legacy registration; use POST /runners/verify`);
        throw forbidden();
      }
      if (token !== ctx.runners.registrationToken) throw forbidden();
      const maximumTimeout = typeof body.maximum_timeout === 'number' ? body.maximum_timeout : undefined;
      const description = optionalString(body, 'description');
      // Legacy registration hands out a plain random token, never glrt- (docs/gitlab-protocol.md §1).
      const legacy = ctx.runners.add({
        token: randomToken(20),
        kind: 'legacy',
        paused: body.paused === true,
        ...(description === undefined ? {} : { description }),
        ...(maximumTimeout === undefined ? {} : { maximumTimeout }),
      });
      sendJson(res, 201, { id: legacy.id, token: legacy.token, token_expires_at: null });
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/v4\/runners\/verify$/,
    async handler(ctx, req, res) {
      const where = 'POST /runners/verify';
      const body = await readJsonObject(req, where);
      const token = requireString(body, 'token', where);
      const runner = authenticate(ctx, token, where);
      const systemId = optionalString(body, 'system_id');
      if (token.startsWith('glrt-') && !systemId) {
        ctx.violations.add(30, `${where}: runner ${runner.id} verified a glrt- token without system_id`);
      }
      // Rails stores info.features as the manager's runtime_features (needed for cancel_gracefully).
      const features = asObject(asObject(body.info)?.features);
      ctx.runners.heartbeat(runner, systemId, features);
      // A runner verifies when its process starts: a new process has no last_update yet (check 2).
      ctx.runners.forgetLastUpdates(token);
      for (const j of ctx.ci.jobs.values()) if (j.runnerId === runner.id && ctx.ci.isActive(j)) j.offsetUnknown = true;
      sendJson(res, 200, { id: runner.id, token: runner.token, token_expires_at: ctx.runners.expiresAtIso(runner) });
    },
  },
  {
    method: 'DELETE',
    pattern: /^\/api\/v4\/runners$/,
    async handler(ctx, req, res) {
      const where = 'DELETE /runners';
      const body = await readJsonObject(req, where);
      const token = requireString(body, 'token', where);
      const runner = authenticate(ctx, token, where);
      if (runner.kind === 'authentication') {
        ctx.violations.add(
          30,
          `${where}: runner ${runner.id} has a glrt- token; unregistering must use DELETE /runners/managers {token, system_id}`,
        );
      }
      ctx.runners.remove(runner);
      sendEmpty(res, 204);
    },
  },
  {
    method: 'DELETE',
    pattern: /^\/api\/v4\/runners\/managers$/,
    async handler(ctx, req, res) {
      const where = 'DELETE /runners/managers';
      const body = await readJsonObject(req, where);
      const token = requireString(body, 'token', where);
      const systemId = requireString(body, 'system_id', where);
      const runner = authenticate(ctx, token, where);
      if (!runner.managers.delete(systemId)) throw new HttpError(404, messageBody(404, 'Runner manager not found'));
      sendEmpty(res, 204);
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/v4\/runners\/reset_authentication_token$/,
    async handler(ctx, req, res) {
      const where = 'POST /runners/reset_authentication_token';
      const body = await readJsonObject(req, where);
      const runner = authenticate(ctx, requireString(body, 'token', where), where);
      ctx.runners.resetToken(runner);
      sendJson(res, 201, { token: runner.token, token_expires_at: ctx.runners.expiresAtIso(runner) });
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/v4\/runners\/router\/discovery$/,
    async handler(_ctx, _req, res) {
      sendJson(res, 501, messageBody(501, 'Not Implemented'));
    },
  },
];
