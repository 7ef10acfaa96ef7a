// A tiny HTTP server for tests that speaks only what each test scripts: named request/response pairs
// (consumed in order) or a handler. Every request is recorded for assertions.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: Buffer;
  /** Parsed body when it was JSON. */
  json?: any;
  /** Virtual time when it arrived, if the server was given a clock. */
  at?: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** An object is sent as application/json unless headers say otherwise. */
  body?: unknown;
  /** Close the connection instead of answering (what a client sees when a server drops a kept-alive socket). */
  drop?: boolean;
}

export interface Exchange {
  name: string;
  method: string;
  /** Path without /api/v4 and without the query, e.g. "/jobs/request". */
  path: string | RegExp;
  reply: Reply | ((req: RecordedRequest) => Reply);
}

export class ScriptedGitLab {
  readonly requests: RecordedRequest[] = [];
  /** Requests nobody scripted, with the reason. Tests assert this stays empty. */
  readonly unexpected: string[] = [];
  private script: Exchange[] = [];
  private handler: ((req: RecordedRequest) => Reply | undefined) | undefined;
  private waiters: Array<{ pred: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }> = [];
  private server: Server | undefined;
  url = '';

  constructor(private readonly now?: () => number) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.onRequest(req).then((reply) => {
        if (reply.drop) return void req.socket.destroy();
        const headers: Record<string, string> = { ...reply.headers };
        let body: string | Buffer = '';
        if (reply.body instanceof Buffer || typeof reply.body === 'string') body = reply.body;
        else if (reply.body !== undefined) {
          body = JSON.stringify(reply.body);
          if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
        }
        res.writeHead(reply.status, headers).end(body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  /** Appends named exchanges, answered in order. */
  expect(...exchanges: Exchange[]): this {
    this.script.push(...exchanges);
    return this;
  }

  /** Answers whatever the script does not cover (return undefined to fall through to "unexpected"). */
  handle(handler: (req: RecordedRequest) => Reply | undefined): this {
    this.handler = handler;
    return this;
  }

  /** Exchanges not yet consumed. */
  get pending(): string[] {
    return this.script.map((e) => e.name);
  }

  /** Resolves with the first request (already received or future) that matches. */
  waitFor(pred: (r: RecordedRequest) => boolean): Promise<RecordedRequest> {
    const seen = this.requests.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  private async onRequest(req: IncomingMessage): Promise<Reply> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const rec: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname.replace(/^\/api\/v4/, ''),
      query: url.searchParams,
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')])),
      body: Buffer.concat(chunks),
    };
    if (this.now) rec.at = this.now();
    if ((rec.headers['content-type'] ?? '').startsWith('application/json')) rec.json = JSON.parse(rec.body.toString('utf8'));
    this.requests.push(rec);
    this.waiters = this.waiters.filter((w) => (w.pred(rec) ? (w.resolve(rec), false) : true));

    const next = this.script[0];
    if (next && next.method === rec.method && (typeof next.path === 'string' ? next.path === rec.path : next.path.test(rec.path))) {
      this.script.shift();
      return typeof next.reply === 'function' ? next.reply(rec) : next.reply;
    }
    const handled = this.handler?.(rec);
    if (handled) return handled;
    this.unexpected.push(`${rec.method} ${rec.path}${next ? ` (expected "${next.name}": ${next.method} ${next.path})` : ''}`);
    return { status: 599, body: { message: 'not scripted' } };
  }
}
