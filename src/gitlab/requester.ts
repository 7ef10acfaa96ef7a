// The HTTP boundary of the GitLab client: one method, so retry, metrics and test doubles are decorators
// or stand-ins around it (gitlab-runner's network/retry_requester.go idea).

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  /** A JSON body: sent with `Content-Type` and `Accept: application/json`. */
  json?: unknown;
  /** A raw body; the caller sets its `Content-Type`. Ignored when `json` is given. */
  bytes?: Uint8Array;
  /** Aborts the request (and any retry wait) with the signal's reason. */
  signal?: AbortSignal;
  /** Per-attempt limit on the whole exchange; the requester's default applies when omitted. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

export interface Requester {
  /** Resolves with any HTTP status; rejects only when no answer came (or the signal aborted). */
  do(req: HttpRequest): Promise<HttpResponse>;
}

export const JSON_MIME = 'application/json';

/** True when the body is declared `application/json` (parameters such as charset allowed). */
export function isJsonResponse(res: HttpResponse): boolean {
  const type = res.headers.get('content-type') ?? '';
  return type.split(';')[0]!.trim().toLowerCase() === JSON_MIME;
}

export function responseText(res: HttpResponse): string {
  return new TextDecoder().decode(res.body);
}

/** Parses the body as JSON; throws SyntaxError for a bad body. */
export function responseJson(res: HttpResponse): unknown {
  return JSON.parse(responseText(res));
}

export interface FetchRequesterOptions {
  /** Per-request limit when the request sets none. Default 120 s. */
  timeoutMs?: number;
  /** Stand-in for the global fetch (tests). */
  fetch?: typeof fetch;
}

/**
 * Requester over the global fetch. Redirects are not followed: GitLab's runner API never redirects, and
 * following one would resend JOB-TOKEN/RUNNER-TOKEN (custom headers survive cross-origin redirects) and the
 * token in the body to wherever the Location points. A 3xx is returned as is and becomes an error upstream.
 * Note: fetch (undici) also gives up after 300 s without response headers, whatever `timeoutMs` says.
 */
export class FetchRequester implements Requester {
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(options: FetchRequesterOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  async do(req: HttpRequest): Promise<HttpResponse> {
    const headers = new Headers(req.headers);
    let body: Uint8Array | string | undefined;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers.set('Content-Type', JSON_MIME);
      headers.set('Accept', JSON_MIME);
    } else if (req.bytes !== undefined) {
      body = req.bytes;
    }
    const timeout = AbortSignal.timeout(req.timeoutMs ?? this.timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.fetchFn(req.url, { method: req.method, headers, body, signal, redirect: 'manual' });
        const bytes = new Uint8Array(await res.arrayBuffer());
        return { status: res.status, headers: res.headers, body: bytes };
      } catch (e) {
        // The caller's own abort is reported with its reason, so callers can tell "stopped" from "failed".
        if (req.signal?.aborted) throw req.signal.reason;
        if (attempt === 1 && REPLAYABLE.has(req.method) && isClosedConnection(e)) continue;
        throw e;
      }
    }
  }
}

/**
 * Calls sent once more, at once, when the connection closed under them without an answer. A kept-alive
 * socket that the server (or a proxy) closes for idleness just as a request goes out on it fails that
 * request; Go's transport, and so gitlab-runner, sends such a request again on a new connection. undici
 * does not. These methods are safe to send twice in GitLab's runner API: a PUT sets a state, a PATCH names
 * its Content-Range (a second copy is refused with 416), GET and DELETE change nothing more. POST is left
 * to its caller (a job request that did reach GitLab has handed out its job either way).
 */
export const REPLAYABLE = new Set<HttpMethod>(['PUT', 'PATCH', 'GET', 'DELETE']);

/** The peer ended the socket before the answer: undici's "other side closed" (in the error's cause), or
 *  node:http's reset ("socket hang up") or broken pipe. */
export function isClosedConnection(e: unknown): boolean {
  const err = e as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = err?.cause?.code ?? err?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}
