// YAML text → validated, defaulted, unit-normalised, frozen config. Every error names the key path.

import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { interpolateEnv } from './interpolate.js';
import { configSchema, type RawConfig } from './schema.js';
import { parseDuration, parseSize } from './units.js';

export interface RoutingRules {
  services?: readonly string[];
  images?: readonly string[];
  variables?: Readonly<Record<string, string>>;
}

export interface LocalProviderConfig {
  root?: string;
  network: 'loopback' | 'namespace';
}

export interface ExecutorConfig {
  name: string;
  provider: 'local';
  style: 'shell';
  maxMachines: number;
  environment: Readonly<Record<string, string>>;
  bootTimeoutMs: number;
  afterScriptTimeoutMs: number;
  match?: RoutingRules;
  local: LocalProviderConfig;
}

export interface FleetConfig {
  gitlab: {
    url: string;
    machineUrl: string;
    token?: string;
    registrationToken?: string;
    runner: { description: string; tags: readonly string[]; runUntagged: boolean; locked: boolean; maximumTimeoutS?: number };
    unregisterOnStop: boolean;
  };
  concurrent: number;
  checkIntervalMs: number;
  shutdownTimeoutMs: number;
  outputLimitBytes: number;
  fleet: string;
  stateDir?: string;
  log: { level: 'debug' | 'info' | 'warn' | 'error'; format: 'json' | 'pretty' };
  metrics: { listen?: string };
  executors: readonly ExecutorConfig[];
}

function pathOf(issuePath: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of issuePath) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return `is required (expected ${issue.expected})`;
  return issue.message;
}

function duration(path: string, v: string | number): number {
  const ms = parseDuration(v);
  if (ms === undefined) throw new ConfigError(path, `expected a duration such as 30s, 5m or 1h30m, got ${JSON.stringify(v)}`);
  return ms;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export function compileConfig(raw: unknown, env: Record<string, string | undefined> = {}): FleetConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('', 'the config file must be a YAML mapping');
  const interpolated = interpolateEnv(raw, env);
  const parsed = configSchema.safeParse(interpolated);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(pathOf(issue.path), describeIssue(issue));
  }
  const c: RawConfig = parsed.data;
  if (!c.gitlab.token === !c.gitlab.registrationToken) {
    throw new ConfigError('gitlab.token', 'set exactly one of gitlab.token (runner authentication token, glrt-…) and gitlab.registrationToken');
  }
  const names = new Set<string>();
  c.executors.forEach((e, i) => {
    if (names.has(e.name)) throw new ConfigError(`executors[${i}].name`, `duplicate executor name "${e.name}"`);
    names.add(e.name);
  });
  const outputLimitBytes = parseSize(c.outputLimit);
  if (outputLimitBytes === undefined || outputLimitBytes < 1024) {
    throw new ConfigError('outputLimit', `expected a size of at least 1KiB such as 4MiB, got ${JSON.stringify(c.outputLimit)}`);
  }
  const maxTimeout = c.gitlab.runner.maximumTimeout;
  const config: FleetConfig = {
    gitlab: {
      url: trimSlash(c.gitlab.url),
      machineUrl: trimSlash(c.gitlab.machineUrl ?? c.gitlab.url),
      ...(c.gitlab.token !== undefined && { token: c.gitlab.token }),
      ...(c.gitlab.registrationToken !== undefined && { registrationToken: c.gitlab.registrationToken }),
      runner: {
        description: c.gitlab.runner.description,
        tags: c.gitlab.runner.tags,
        runUntagged: c.gitlab.runner.runUntagged,
        locked: c.gitlab.runner.locked,
        ...(maxTimeout !== undefined && { maximumTimeoutS: Math.round(duration('gitlab.runner.maximumTimeout', maxTimeout) / 1000) }),
      },
      unregisterOnStop: c.gitlab.unregisterOnStop,
    },
    concurrent: c.concurrent,
    checkIntervalMs: duration('checkInterval', c.checkInterval),
    shutdownTimeoutMs: duration('shutdownTimeout', c.shutdownTimeout),
    outputLimitBytes,
    fleet: c.fleet,
    ...(c.stateDir !== undefined && { stateDir: c.stateDir }),
    log: c.log,
    metrics: c.metrics.listen !== undefined ? { listen: c.metrics.listen } : {},
    executors: c.executors.map((e, i) => ({
      name: e.name,
      provider: e.provider,
      style: e.style,
      maxMachines: e.maxMachines,
      environment: e.environment,
      bootTimeoutMs: duration(`executors[${i}].bootTimeout`, e.bootTimeout),
      afterScriptTimeoutMs: duration(`executors[${i}].afterScriptTimeout`, e.afterScriptTimeout),
      ...(e.match !== undefined && { match: e.match }),
      local: { network: e.local.network, ...(e.local.root !== undefined && { root: e.local.root }) },
    })),
  };
  return deepFreeze(config);
}

export function parseConfigText(text: string, env: Record<string, string | undefined> = {}): FleetConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
    throw new ConfigError('', `the file is not valid YAML${where}: ${(e as Error).message.split('\n')[0]}`);
  }
  return compileConfig(raw, env);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
