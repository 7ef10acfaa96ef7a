// Requester over node:http/https with kept-alive connections: what the coordinator uses for GitLab. fetch
// (undici) costs more per call than a runner with a thousand jobs can pay: web streams for every body, an
// AbortSignal.any and a timeout signal per call, a Headers object for the request. A running job sends a
// trace PATCH every few seconds; over fetch that was the larger half of the coordinator's CPU per job
// (README "One coordinator for many jobs"). Here a call is one request on a pooled socket, one timer
// and one listener. Semantics are FetchRequester's: no redirect followed, any status resolved, a transport
// failure rejects, and a call in REPLAYABLE is sent once more when its connection closed under it.

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

import { JSON_MIME, REPLAYABLE, isClosedConnection, type HttpRequest, type HttpResponse, type Requester } from './requester.js';

export interface HttpRequesterOptions {
  /** Per-request limit when the request sets none. Default 120 s. */
  timeoutMs?: number;
}

export class HttpRequester implements Requester {
  private readonly timeoutMs: number;
  // LIFO (the default): the socket used last is the one least likely to have been closed for idleness.
  private readonly http = new HttpAgent({ keepAlive: true, maxFreeSockets: 1024 });
  private readonly https = new HttpsAgent({ keepAlive: true, maxFreeSockets: 1024 });

  constructor(options: HttpRequesterOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  async do(req: HttpRequest): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...req.headers };
    let body: Buffer | undefined;
    if (req.json !== undefined) {
      body = Buffer.from(JSON.stringify(req.json));
      headers['Content-Type'] = JSON_MIME;
      headers['Accept'] = JSON_MIME;
    } else if (req.bytes !== undefined) {
      body = Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength);
    }
    if (body !== undefined) headers['Content-Length'] = String(body.length);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(req, headers, body);
      } catch (e) {
        // The caller's own abort is reported with its reason, so callers can tell "stopped" from "failed".
        if (req.signal?.aborted) throw req.signal.reason;
        if (attempt === 1 && REPLAYABLE.has(req.method) && isClosedConnection(e)) continue;
        throw e;
      }
    }
  }

  /** Closes the kept-alive sockets now. Not needed to exit: the agents let go of idle sockets (unref). */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }

  private once(req: HttpRequest, headers: Record<string, string>, body: Buffer | undefined): Promise<HttpResponse> {
    req.signal?.throwIfAborted();
    const url = new URL(req.url);
    const secure = url.protocol === 'https:';
    const options: RequestOptions = { method: req.method, headers, agent: secure ? this.https : this.http };
    return new Promise<HttpResponse>((resolve, reject) => {
      const r = (secure ? httpsRequest : httpRequest)(url, options);
      let done = false;
      const finish = (err: unknown, res?: HttpResponse) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        if (err !== undefined) reject(err);
        else resolve(res!);
      };
      const onAbort = () => {
        finish(req.signal!.reason);
        r.destroy();
      };
      const timer = setTimeout(() => {
        finish(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
        r.destroy();
      }, req.timeoutMs ?? this.timeoutMs);
      req.signal?.addEventListener('abort', onAbort, { once: true });
      r.on('error', (e) => finish(e));
      r.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => finish(e));
        res.on('aborted', () => finish(Object.assign(new Error('the connection closed during the response'), { code: 'ECONNRESET' })));
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: headersOf(res), body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }));
      });
      r.end(body);
    });
  }
}

function headersOf(res: IncomingMessage): Headers {
  const h = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) h.append(raw[i]!, raw[i + 1]!);
  return h;
}
