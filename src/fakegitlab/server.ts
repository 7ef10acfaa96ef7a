// The HTTP front: routing, the request log (tokens redacted) and the never-crash rule. Any exception a
// handler did not turn into an HttpError is a bug in the fake: 500 plus a recorded violation.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeContext, Route } from './context.js';
import { HttpError, messageBody, sendJson } from './http-util.js';
import type { RequestLogEntry } from './types.js';

const LOGGED_REQUEST_HEADERS = [
  'content-type',
  'content-range',
  'content-length',
  'content-encoding',
  'accept',
  'user-agent',
  'x-request-id',
  'git-protocol',
];
const SECRET_REQUEST_HEADERS = ['job-token', 'runner-token', 'private-token', 'authorization'];
const LOGGED_RESPONSE_HEADERS = [
  'job-status',
  'range',
  'x-gitlab-trace-update-interval',
  'x-gitlab-last-update',
  'gitlab-ci-builds-polling',
  'retry-after',
  'location',
  'content-type',
];

export class FakeServer {
  readonly requests: RequestLogEntry[] = [];
  private server?: Server;

  constructor(
    private readonly ctx: FakeContext,
    private readonly routes: Route[],
  ) {}

  async listen(port: number, host: string): Promise<number> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        // Last resort: even the error path failed. Never let it reach the process.
        this.ctx.logger.error({ err: String(e) }, 'fake GitLab failed to answer');
        res.destroy();
      });
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = this.ctx.clock.now();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://fake.invalid');
    } catch {
      url = new URL('http://fake.invalid/invalid-url');
    }
    const entry: RequestLogEntry = {
      at: started,
      method: req.method ?? '',
      path: url.pathname,
      query: redactQuery(url),
      headers: requestHeaders(req),
      responseHeaders: {},
    };
    this.requests.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
      entry.durationMs = this.ctx.clock.now() - started;
      for (const name of LOGGED_RESPONSE_HEADERS) {
        const v = res.getHeader(name);
        if (v !== undefined) entry.responseHeaders[name] = String(v);
      }
      this.ctx.logger.debug({ method: entry.method, path: entry.path, status: entry.status }, 'fake GitLab request');
    });
    req.on('error', () => undefined);
    const down = url.pathname.startsWith('/api/v4/jobs') ? this.ctx.faults.outageStatus(this.ctx.clock.now()) : undefined;
    if (down !== undefined) {
      req.resume();
      res.writeHead(down, { 'Content-Type': 'text/html' }).end(`<html><body><h1>${down} Bad Gateway</h1></body></html>\n`);
      return;
    }
    try {
      await this.dispatch(req, res, url);
    } catch (e) {
      this.fail(req, res, e);
    }
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    for (const route of this.routes) {
      const m = route.pattern.exec(url.pathname);
      if (!m || (route.method !== '*' && route.method !== req.method)) continue;
      await route.handler(this.ctx, req, res, m.slice(1).map((s) => s ?? ''), url);
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      this.ctx.violations.add('api', `${req.method} ${url.pathname}: no such runner API endpoint`);
    }
    req.resume();
    sendJson(res, 404, messageBody(404, 'Not Found'));
  }

  private fail(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    if (e instanceof HttpError) {
      if (e.violation) this.ctx.violations.add(e.violation.check, e.violation.message);
      req.resume();
      if (!res.headersSent) sendJson(res, e.status, e.body, e.headers);
      else res.end();
      return;
    }
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    this.ctx.violations.add('internal', `${req.method} ${req.url ?? ''}: the fake GitLab threw: ${message}`);
    req.resume();
    if (!res.headersSent) sendJson(res, 500, messageBody(500, 'Internal Server Error'));
    else res.destroy();
  }
}

function requestHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of LOGGED_REQUEST_HEADERS) {
    const v = req.headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  for (const name of SECRET_REQUEST_HEADERS) {
    const v = req.headers[name];
    if (v === undefined) continue;
    const text = Array.isArray(v) ? v.join(', ') : v;
    const scheme = name === 'authorization' ? (/^\w+\s/.exec(text)?.[0] ?? '') : '';
    out[name] = `${scheme}[REDACTED]`;
  }
  return out;
}

function redactQuery(url: URL): string {
  const q = new URLSearchParams(url.search);
  for (const key of ['token', 'job_token', 'private_token']) if (q.has(key)) q.set(key, '[REDACTED]');
  const s = q.toString();
  return s ? `?${s}` : '';
}
