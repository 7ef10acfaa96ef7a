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
    try {
      const res = await this.fetchFn(req.url, { method: req.method, headers, body, signal, redirect: 'manual' });
      const bytes = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, headers: res.headers, body: bytes };
    } catch (e) {
      // The caller's own abort is reported with its reason, so callers can tell "stopped" from "failed".
      if (req.signal?.aborted) throw req.signal.reason;
      throw e;
    }
  }
}
