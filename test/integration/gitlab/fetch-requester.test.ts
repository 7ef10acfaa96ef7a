import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FetchRequester } from '../../../src/gitlab/requester.js';
import { ScriptedGitLab } from './helpers/scripted-gitlab.js';

let gitlab: ScriptedGitLab;
beforeEach(async () => {
  gitlab = await new ScriptedGitLab().start();
});
afterEach(async () => {
  expect(gitlab.unexpected).toEqual([]);
  await gitlab.close();
});

describe('a connection closed under a request without an answer', () => {
  it.each(['PUT', 'PATCH'] as const)('a %s is sent once more on a new connection, as Go does', async (method) => {
    gitlab.expect(
      { name: 'dropped', method, path: '/jobs/1', reply: { status: 0, drop: true } },
      { name: 'answered', method, path: '/jobs/1', reply: { status: 200, body: {} } },
    );
    const res = await new FetchRequester().do({ method, url: `${gitlab.url}/api/v4/jobs/1`, bytes: new TextEncoder().encode('x') });
    expect(res.status).toBe(200);
    expect(gitlab.requests.map((r) => r.body.toString())).toEqual(['x', 'x']);
  });

  it('only once: a second close is the caller’s to handle', async () => {
    gitlab.expect(
      { name: 'dropped', method: 'PUT', path: '/jobs/1', reply: { status: 0, drop: true } },
      { name: 'dropped again', method: 'PUT', path: '/jobs/1', reply: { status: 0, drop: true } },
    );
    await expect(new FetchRequester().do({ method: 'PUT', url: `${gitlab.url}/api/v4/jobs/1`, json: {} })).rejects.toThrow();
    expect(gitlab.requests).toHaveLength(2);
  });

  it('a POST is not sent again (a job request that arrived has handed out its job)', async () => {
    gitlab.expect({ name: 'dropped', method: 'POST', path: '/jobs/request', reply: { status: 0, drop: true } });
    await expect(new FetchRequester().do({ method: 'POST', url: `${gitlab.url}/api/v4/jobs/request`, json: {} })).rejects.toThrow();
    expect(gitlab.requests).toHaveLength(1);
  });
});
