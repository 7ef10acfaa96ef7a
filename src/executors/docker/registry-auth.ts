// Registry credentials for one job, as Docker config.json contents. Sources, first match per registry wins
// (gitlab-runner's order): the job's DOCKER_AUTH_CONFIG variable, logins from the coordinator (e.g. ECR),
// then the job's `credentials[]` of type registry (GitLab's own registry with the job token).

import type { JobPayload } from '../../core/index.js';
import type { RegistryLogin } from './options.js';
import { authKeyOf, normalizeRegistry } from './image-ref.js';

export interface DockerAuthConfig {
  /** normalized registry → base64 "user:password". */
  auths: Map<string, string>;
  /** normalized registry → credential helper name (from DOCKER_AUTH_CONFIG). */
  credHelpers: Map<string, string>;
  /** Values to mask in the trace: passwords and the base64 forms that embed them. */
  secrets: string[];
  /** Problems worth a warning line (an unparsable DOCKER_AUTH_CONFIG). */
  warnings: string[];
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export function emptyAuthConfig(): DockerAuthConfig {
  return { auths: new Map(), credHelpers: new Map(), secrets: [], warnings: [] };
}

export function addLogin(c: DockerAuthConfig, login: RegistryLogin): void {
  const reg = normalizeRegistry(login.registry);
  if (reg === '' || c.auths.has(reg) || c.credHelpers.has(reg)) return;
  const auth = b64(`${login.username}:${login.password}`);
  c.auths.set(reg, auth);
  if (login.password !== '') c.secrets.push(login.password);
  c.secrets.push(auth);
}

/** Reads DOCKER_AUTH_CONFIG (`{"auths": {reg: {auth} | {username, password}}, "credHelpers": {…}}`). */
export function addDockerAuthConfig(c: DockerAuthConfig, text: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    c.warnings.push('DOCKER_AUTH_CONFIG is not valid JSON; ignored');
    return;
  }
  if (typeof parsed !== 'object' || parsed === null) return;
  const { auths, credHelpers } = parsed as { auths?: unknown; credHelpers?: unknown };
  if (typeof auths === 'object' && auths !== null) {
    for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
      if (typeof entry !== 'object' || entry === null) continue;
      const e = entry as { auth?: unknown; username?: unknown; password?: unknown };
      if (typeof e.auth === 'string' && e.auth !== '') {
        const reg = normalizeRegistry(key);
        if (c.auths.has(reg)) continue;
        c.auths.set(reg, e.auth);
        c.secrets.push(e.auth);
        const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon >= 0 && colon < decoded.length - 1) c.secrets.push(decoded.slice(colon + 1));
      } else if (typeof e.username === 'string' && typeof e.password === 'string') {
        addLogin(c, { registry: key, username: e.username, password: e.password });
      }
    }
  }
  if (typeof credHelpers === 'object' && credHelpers !== null) {
    for (const [key, helper] of Object.entries(credHelpers as Record<string, unknown>)) {
      const reg = normalizeRegistry(key);
      if (typeof helper === 'string' && /^[A-Za-z0-9_.-]+$/.test(helper) && !c.auths.has(reg)) c.credHelpers.set(reg, helper);
    }
  }
}

/** The last DOCKER_AUTH_CONFIG the job defines (a file variable's content is its value). */
export function dockerAuthConfigVariable(job: JobPayload): string | undefined {
  for (let i = job.variables.length - 1; i >= 0; i--) {
    const v = job.variables[i];
    if (v?.key === 'DOCKER_AUTH_CONFIG') return v.value;
  }
  return undefined;
}

export function jobRegistryCredentials(job: JobPayload): RegistryLogin[] {
  return (job.credentials ?? [])
    .filter((c) => c.type === 'registry' && c.url)
    .map((c) => ({ registry: c.url, username: c.username, password: c.password }));
}

/** Pull credentials for a job, in gitlab-runner's precedence. */
export function pullAuthConfig(job: JobPayload, coordinatorLogins: readonly RegistryLogin[]): DockerAuthConfig {
  const c = emptyAuthConfig();
  const fromVariable = dockerAuthConfigVariable(job);
  if (fromVariable !== undefined && fromVariable.trim() !== '') addDockerAuthConfig(c, fromVariable);
  for (const l of coordinatorLogins) addLogin(c, l);
  for (const l of jobRegistryCredentials(job)) addLogin(c, l);
  return c;
}

export function authConfigFor(logins: readonly RegistryLogin[]): DockerAuthConfig {
  const c = emptyAuthConfig();
  for (const l of logins) addLogin(c, l);
  return c;
}

/** True when this config has something for `registry` (else the machine's own Docker config is used,
 *  e.g. its `credsStore: ecr-login`). */
export function coversRegistry(c: DockerAuthConfig, registry: string): boolean {
  return c.auths.has(registry) || c.credHelpers.has(registry);
}

export function isEmptyAuthConfig(c: DockerAuthConfig): boolean {
  return c.auths.size === 0 && c.credHelpers.size === 0;
}

/** config.json text. */
export function renderDockerConfig(c: DockerAuthConfig): string {
  const auths: Record<string, { auth: string }> = {};
  for (const [reg, auth] of c.auths) auths[authKeyOf(reg)] = { auth };
  const out: { auths: typeof auths; credHelpers?: Record<string, string> } = { auths };
  if (c.credHelpers.size > 0) out.credHelpers = Object.fromEntries([...c.credHelpers].map(([r, h]) => [authKeyOf(r), h]));
  return `${JSON.stringify(out, null, 2)}\n`;
}
