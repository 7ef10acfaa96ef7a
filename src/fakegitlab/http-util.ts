// Small HTTP helpers shared by the routes: body reading with limits, JSON replies shaped like Grape's,
// and an error type that the server turns into a response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';

/** Thrown by handlers; the server answers it. `violation` is recorded first when set. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
    readonly violation?: { check: number | string; message: string },
  ) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
  }
}

export function messageBody(status: number, text: string): { message: string } {
  return { message: `${status} ${text}` };
}

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) tooBig = true; // keep draining so the connection stays usable
    else chunks.push(chunk);
  }
  if (tooBig) throw new HttpError(413, messageBody(413, 'Request Entity Too Large'));
  return Buffer.concat(chunks);
}

export type JsonObject = Record<string, unknown>;

/** Reads a JSON object body. Malformed JSON or a non-JSON Content-Type is a runner mistake: 400 + violation. */
export async function readJsonObject(req: IncomingMessage, what: string): Promise<JsonObject> {
  const raw = await readBody(req, 1024 * 1024);
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(400, { error: 'Content-Type must be application/json' }, {}, {
      check: 'transport',
      message: `${what}: Content-Type is "${type}", JSON requests must send application/json`,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, { error: 'malformed JSON body' }, {}, { check: 'transport', message: `${what}: malformed JSON body` });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new HttpError(400, { error: 'body must be a JSON object' }, {}, {
      check: 'transport',
      message: `${what}: body is not a JSON object`,
    });
  }
  return parsed as JsonObject;
}

/** Grape's answer to a missing required parameter. */
export function requireString(body: JsonObject, key: string, what: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '') {
    throw new HttpError(400, { error: `${key} is missing` }, {}, { check: 'transport', message: `${what}: "${key}" is missing` });
  }
  return v;
}

export function optionalString(body: JsonObject, key: string): string | undefined {
  const v = body[key];
  return typeof v === 'string' ? v : undefined;
}

export function asObject(v: unknown): JsonObject | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : undefined;
}

/** Headers go through setHeader so that the request log can read them back with getHeader. */
export function writeHead(res: ServerResponse, status: number, headers: Record<string, string | number>): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.writeHead(status);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  writeHead(res, status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  writeHead(res, status, headers);
  res.end();
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** Random token body from GitLab's token alphabet. */
export function randomToken(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALNUM[b % ALNUM.length];
  return out;
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}
