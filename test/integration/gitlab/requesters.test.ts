// The two Requesters (node:http, what the coordinator uses; fetch, what tests may inject) keep one contract:
// any status resolves with its headers and body, no redirect is followed, a transport failure rejects, a
// call's own limit and its caller's abort end it, and a call safe to repeat is sent once more when its
// connection closed under it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpRequester } from '../../../src/gitlab/http-requester.js';
import { FetchRequester, type Requester } from '../../../src/gitlab/requester.js';
import { ScriptedGitLab } from './helpers/scripted-gitlab.js';

let gitlab: ScriptedGitLab;
beforeEach(async () => {
  gitlab = await new ScriptedGitLab().start();
});
afterEach(async () => {
  expect(gitlab.unexpected).toEqual([]);
  await gitlab.close();
});

const requesters: Array<[string, () => Requester]> = [
  ['node:http', () => new HttpRequester()],
  ['fetch', () => new FetchRequester()],
];

describe.each(requesters)('%s requester', (_name, make) => {
  it('resolves any status with its headers and body, sends JSON with its type, and follows no redirect', async () => {
    gitlab.expect(
      { name: 'json', method: 'PUT', path: '/jobs/1', reply: { status: 202, headers: { 'Job-Status': 'running', 'X-Two': 'b' }, body: { ok: 1 } } },
      { name: 'redirect', method: 'GET', path: '/jobs/2', reply: { status: 302, headers: { Location: 'http://127.0.0.1:1/elsewhere' } } },
    );
    const r = make();
    const res = await r.do({ method: 'PUT', url: `${gitlab.url}/api/v4/jobs/1`, json: { state: 'running' }, headers: { 'JOB-TOKEN': 'a-test-token' } });
    expect(res.status).toBe(202);
    expect(res.headers.get('job-status')).toBe('running');
    expect(JSON.parse(new TextDecoder().decode(res.body))).toEqual({ ok: 1 });
    expect(gitlab.requests[0]!.json).toEqual({ state: 'running' });
    expect(gitlab.requests[0]!.headers['job-token']).toBe('a-test-token');
    expect(gitlab.requests[0]!.headers['accept']).toBe('application/json');
    const redirected = await r.do({ method: 'GET', url: `${gitlab.url}/api/v4/jobs/2` });
    expect(redirected.status).toBe(302);
  });

  it('sends raw bytes as they are, with their length', async () => {
    gitlab.expect({ name: 'patch', method: 'PATCH', path: '/jobs/1/trace', reply: { status: 202 } });
    const bytes = new Uint8Array(Buffer.from('héllo\x00\xff'));
    await make().do({ method: 'PATCH', url: `${gitlab.url}/api/v4/jobs/1/trace`, bytes: bytes.subarray(1), headers: { 'Content-Type': 'text/plain' } });
    expect(gitlab.requests[0]!.body.equals(Buffer.from(bytes.subarray(1)))).toBe(true);
    expect(gitlab.requests[0]!.headers['content-length']).toBe(String(bytes.length - 1));
  });

  it('a PUT or PATCH whose connection closed without an answer is sent once more, as Go does', async () => {
    for (const method of ['PUT', 'PATCH'] as const) {
      gitlab.expect(
        { name: 'dropped', method, path: '/jobs/1', reply: { status: 0, drop: true } },
        { name: 'answered', method, path: '/jobs/1', reply: { status: 200, body: {} } },
      );
    }
    for (const method of ['PUT', 'PATCH'] as const) {
      const res = await make().do({ method, url: `${gitlab.url}/api/v4/jobs/1`, bytes: new TextEncoder().encode('x') });
      expect(res.status).toBe(200);
    }
    expect(gitlab.requests.map((r) => r.body.toString())).toEqual(['x', 'x', 'x', 'x']);
  });

  it('only once: a second close is the caller’s to handle', async () => {
    gitlab.expect(
      { name: 'dropped', method: 'PUT', path: '/jobs/1', reply: { status: 0, drop: true } },
      { name: 'dropped again', method: 'PUT', path: '/jobs/1', reply: { status: 0, drop: true } },
    );
    await expect(make().do({ method: 'PUT', url: `${gitlab.url}/api/v4/jobs/1`, json: {} })).rejects.toThrow();
    expect(gitlab.requests).toHaveLength(2);
  });

  it('a POST is not sent again (a job request that arrived has handed out its job)', async () => {
    gitlab.expect({ name: 'dropped', method: 'POST', path: '/jobs/request', reply: { status: 0, drop: true } });
    await expect(make().do({ method: 'POST', url: `${gitlab.url}/api/v4/jobs/request`, json: {} })).rejects.toThrow();
    expect(gitlab.requests).toHaveLength(1);
  });

  it('rejects when nobody answers at all', async () => {
    await expect(make().do({ method: 'GET', url: 'http://127.0.0.1:1/api/v4/jobs/1' })).rejects.toThrow();
  });
});

describe.each(requesters)('%s requester against a server that never answers', (_name, make) => {
  let silent: Server;
  let url: string;
  beforeEach(async () => {
    silent = createServer(() => undefined); // reads the request, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/v4/jobs/1`;
  });
  afterEach(async () => {
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  });

  it('gives up at the call’s own limit with a TimeoutError', async () => {
    const e = await make().do({ method: 'GET', url, timeoutMs: 100 }).catch((x: unknown) => x);
    expect((e as Error).name).toBe('TimeoutError');
  });

  it('ends with the caller’s abort reason', async () => {
    const ctl = new AbortController();
    const p = make().do({ method: 'PUT', url, json: {}, signal: ctl.signal });
    const reason = new Error('stopping');
    setTimeout(() => ctl.abort(reason), 50);
    await expect(p).rejects.toBe(reason);
  });
});

describe('node:http requester', () => {
  it('keeps one connection alive across calls', async () => {
    const ports = new Set<number>();
    gitlab.handle((req) => (req.path === '/jobs/1' ? { status: 200, body: {} } : undefined));
    const server = (gitlab as unknown as { server: Server }).server;
    server.on('connection', (s) => ports.add(s.remotePort ?? 0));
    const r = new HttpRequester();
    for (let i = 0; i < 5; i++) await r.do({ method: 'PUT', url: `${gitlab.url}/api/v4/jobs/1`, json: {} });
    r.close();
    expect(gitlab.requests).toHaveLength(5);
    expect(ports.size).toBe(1);
  });
});
