// `metrics.listen`: "host:port" where host is an IPv4 address, an IPv6 address in brackets, a hostname,
// or empty (":9090", every interface). Checked here so that `run` cannot fail on it after it has already
// registered with GitLab.

import { isIPv4, isIPv6 } from 'node:net';

import { COUNT_LIMITS } from './limits.js';

export interface ListenAddress {
  /** What the metrics server is given: "host:port", ":port", or an IPv6 host without brackets ("::1:9090"). */
  listen: string;
  /** Absent for every interface. An IPv6 address without its brackets. */
  host?: string;
  port: number;
}

const EXAMPLES = 'such as 127.0.0.1:9090, [::1]:9090, metrics.internal:9090 or :9090';
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function hostProblem(host: string): string | undefined {
  if (isIPv4(host)) return undefined;
  if (/^[\d.]+$/.test(host)) return `${JSON.stringify(host)} is not an IPv4 address`;
  if (host.length > 253 || !host.split('.').every((l) => LABEL.test(l))) {
    return `${JSON.stringify(host)} is not an IPv4 address, a bracketed IPv6 address or a hostname`;
  }
  return undefined;
}

/** The parsed address, or the reason it is not one (a message for ConfigError). */
export function parseListen(value: string): ListenAddress | string {
  let host: string;
  let portText: string;
  if (value.includes('://')) return `expected host:port ${EXAMPLES}, without a scheme or path, got ${JSON.stringify(value)}`;
  if (value.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(.*)$/.exec(value);
    if (!m) return `expected host:port ${EXAMPLES}, got ${JSON.stringify(value)} (a bracketed IPv6 address needs ]:port after it)`;
    if (!isIPv6(m[1]!)) return `${JSON.stringify(m[1])} is not an IPv6 address`;
    host = m[1]!;
    portText = m[2]!;
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) return `expected host:port ${EXAMPLES}, got ${JSON.stringify(value)} (no port)`;
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':')) return `an IPv6 address needs brackets, e.g. [::1]:9090, got ${JSON.stringify(value)}`;
    if (host !== '') {
      const problem = hostProblem(host);
      if (problem) return `expected host:port ${EXAMPLES}: ${problem}`;
    }
  }
  const { min, max } = COUNT_LIMITS.port;
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= min && port <= max)) return `expected a port from ${min} to ${max} after the last colon, got ${JSON.stringify(portText)} in ${JSON.stringify(value)}`;
  return host === '' ? { listen: `:${port}`, port } : { listen: `${host}:${port}`, host, port };
}
