// The coordinator's own log: pino (structured JSON, fast) or a compact human format for terminals.
// Nothing should log a secret in the first place; as a last line of defence every line is scrubbed of
// GitLab-style tokens before it is written.

import { pino, type DestinationStream } from 'pino';
import type { Logger } from '../core/logger.js';

const TOKEN = /\b(gl(?:pat|oas|dt|rt|cbt|rtr|ptt|ft|imt|agent|soat|ffct|tok)-)[A-Za-z0-9._=-]+/g;

export function scrubTokens(line: string, extraSecrets: readonly string[] = []): string {
  let out = line.replace(TOKEN, '$1[MASKED]');
  for (const s of extraSecrets) if (s.length >= 4) out = out.split(s).join('[MASKED]');
  return out;
}

export interface LoggerOptions {
  level: 'debug' | 'info' | 'warn' | 'error';
  format: 'json' | 'pretty';
  /** Secrets known at start (e.g. a legacy runner token without a gl prefix). */
  secrets?: () => readonly string[];
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const out = opts.destination ?? process.stderr;
  const secrets = opts.secrets ?? (() => []);
  const stream: DestinationStream = {
    write(line: string) {
      const clean = scrubTokens(line, secrets());
      out.write(opts.format === 'pretty' ? pretty(clean) : clean);
    },
  };
  // Level names ("level":"warn"), not pino's numbers: what log queries and CloudWatch filters expect.
  return pino(
    { level: opts.level, base: { service: 'fleetrunner' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    stream,
  ) as unknown as Logger;
}

const LEVELS: Record<string, string> = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO ', warn: 'WARN ', error: 'ERROR', fatal: 'FATAL' };

function pretty(jsonLine: string): string {
  try {
    const { level, time, msg, service: _s, pid: _p, hostname: _h, ...rest } = JSON.parse(jsonLine) as Record<string, unknown>;
    const fields = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${String(time).slice(11, 19)} ${LEVELS[String(level)] ?? String(level)} ${msg}${fields ? `  ${fields}` : ''}\n`;
  } catch {
    return jsonLine;
  }
}
