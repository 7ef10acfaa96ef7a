// Reading GitLab's answers: job state headers, error text, expiry times.

import type { JobStateResponse } from './api-types.js';
import { isJsonResponse, responseJson, responseText, type HttpResponse } from './requester.js';

export function jobState(res: HttpResponse): JobStateResponse {
  const r: JobStateResponse = { status: res.status };
  const js = res.headers.get('job-status')?.trim().toLowerCase();
  if (js) r.jobStatus = js;
  const iv = res.headers.get('x-gitlab-trace-update-interval')?.trim();
  if (iv && /^\d+$/.test(iv) && Number(iv) > 0) r.updateIntervalSec = Number(iv);
  return r;
}

export function serverMessage(res: HttpResponse): string {
  let text: string;
  if (isJsonResponse(res)) {
    try {
      const body = responseJson(res) as { message?: unknown; error?: unknown } | null;
      const m = body?.message ?? body?.error;
      text = m === undefined ? '' : typeof m === 'string' ? m : JSON.stringify(m);
    } catch {
      text = '';
    }
  } else {
    text = responseText(res).trim();
  }
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export function describeTransportError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  const inner = cause instanceof Error ? `: ${(cause as { code?: string }).code ?? cause.message}` : '';
  return `${e.name === 'TimeoutError' ? 'timed out' : e.message}${inner}`;
}

/** GitLab sends ISO 8601 or null; Go's zero time means "never". */
export function parseExpiry(v: unknown): number | undefined {
  if (typeof v !== 'string' || !v || v.startsWith('0001-01-01')) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}
