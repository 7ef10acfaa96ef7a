// `fleetrunner verify --config F` (gitlab-runner's verb): checks the runner token against GitLab and, per
// executor, what it needs (cli/preflight.ts), prints a table and exits 0 when every check passed, 1 when one
// failed (2 for a bad config, in main.ts). Nothing is launched or registered. Tokens are never printed: every
// line goes through `redact` with the configured and saved tokens.

import { homedir } from 'node:os';
import { join } from 'node:path';

import { DEFAULT_RUNNER, type ExecutorConfig, type FleetConfig, type RunnerConfig } from '../config/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import type { CheckResult } from '../core/preflight.js';
import { buildFeatures, buildRunnerInfo, buildUserAgent, createRunnerApi, deploymentIdentity, GitLabApiError, redact } from '../gitlab/index.js';
import { refused, RotatedToken, rotatedTokenSecretStore } from './rotated-token.js';
import { preflight, type PreflightDeps } from './preflight.js';
import { advertisedFeatures } from './run.js';
import { REVISION, VERSION } from './version.js';

export interface VerifyOptions {
  clock?: Clock;
  /** Check only this executor (the GitLab token is always checked). */
  executor?: string;
  /** Seams and settings of the executor checks (AWS clients, sshd path, timeouts). */
  preflight?: Partial<Omit<PreflightDeps, 'clock'>>;
  /** Seam: GitLab's transport. */
  fetch?: typeof fetch;
  /** Per GitLab request. Default 30 s. */
  gitlabTimeoutMs?: number;
  /** Where the table goes. Default stdout. */
  write?: (text: string) => void;
}

/** Every check: the GitLab token first, then each executor's in config order. */
export async function verifyChecks(config: FleetConfig, o: VerifyOptions = {}): Promise<CheckResult[]> {
  const clock = o.clock ?? systemClock;
  const executors = config.executors.filter((e) => o.executor === undefined || e.name === o.executor);
  const deps: PreflightDeps = { fleet: config.fleet, clock, ...o.preflight };
  // The deployment's token, and the token of each runner of `runners:`.
  const runners: Array<RunnerConfig | undefined> = [undefined, ...config.runners.filter((r) => r.token !== undefined)];
  const [saved, tokens, perExecutor] = await Promise.all([
    Promise.all(runners.map((r) => rotatedTokenCheck(config, clock, r))),
    Promise.all(
      runners.map((r) =>
        gitlabTokenCheck(config, clock, o, r).catch(
          (err): CheckResult => ({ executor: 'gitlab', check: 'gitlab-token', target: tokenTarget(config, r), status: 'fail', code: 'Error', message: errorMessage(err) }),
        ),
      ),
    ),
    Promise.all(
      executors.map((e: ExecutorConfig) =>
        preflight(e, deps).catch((err): CheckResult[] => [{ executor: e.name, check: 'preflight', target: e.name, status: 'fail', code: 'Error', message: errorMessage(err) }]),
      ),
    ),
  ]);
  // Each runner's token check, then the store its rotated token is kept in (when that is an SSM parameter).
  const gitlab = runners.flatMap((_, i) => [tokens[i]!, ...(saved[i] ? [saved[i]] : [])]);
  return [...gitlab, ...perExecutor.flat()];
}

/** Where a token check points: GitLab, and the runner of `runners:` it is for. */
function tokenTarget(config: FleetConfig, runner: RunnerConfig | undefined): string {
  return runner === undefined ? config.gitlab.url : `${config.gitlab.url} (runner ${runner.name})`;
}

/** Prints the table; the exit code: 0 when nothing failed, 1 otherwise. */
export async function runVerify(config: FleetConfig, o: VerifyOptions = {}): Promise<number> {
  const results = await verifyChecks(config, o);
  const text = formatVerifyTable(results);
  const secrets = await knownTokens(config);
  (o.write ?? ((s: string) => void process.stdout.write(s)))(redact(text, secrets));
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

const DETAIL_WIDTH = 140;

/** The table: EXECUTOR CHECK TARGET RESULT DETAIL, a summary line, and in full any detail cut short. */
export function formatVerifyTable(results: readonly CheckResult[]): string {
  const header = ['EXECUTOR', 'CHECK', 'TARGET', 'RESULT', 'DETAIL'];
  // Details cut short in the table, in full below it: one entry per distinct text, naming every row it is for.
  const long = new Map<string, string[]>();
  const rows = results.map((r) => {
    const detail = [r.code, r.message].filter((s): s is string => s !== undefined && s !== '').join(': ');
    let shown = detail;
    if (detail.length > DETAIL_WIDTH) {
      shown = `${detail.slice(0, DETAIL_WIDTH - 1)}…`;
      long.set(detail, [...(long.get(detail) ?? []), `${r.executor} ${r.check} ${r.target}`]);
    }
    return [r.executor, r.check, r.target, r.status, shown];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const failed = results.filter((r) => r.status === 'fail').length;
  const skipped = results.filter((r) => r.status === 'skip').length;
  const summary =
    (failed === 0 ? `all ${results.length - skipped} checks passed` : `${failed} of ${results.length} checks failed`) + (skipped ? ` (${skipped} not checked)` : '');
  const out = [line(header), ...rows.map(line), '', summary];
  if (long.size) out.push('', 'In full:', ...[...long].map(([detail, where]) => `${where.join('; ')}:\n  ${detail}`));
  return `${out.join('\n')}\n`;
}

/** POST /runners/verify with the token `run` would use (a rotated one saved in stateDir, else the configured
 *  one) for the deployment's runner, or for `runner` of `runners:`. */
async function gitlabTokenCheck(config: FleetConfig, clock: Clock, o: VerifyOptions, runner?: RunnerConfig): Promise<CheckResult> {
  const base = { executor: 'gitlab', check: 'gitlab-token', target: tokenTarget(config, runner) };
  const configured = runner?.token ?? config.gitlab.token;
  if (configured === undefined) {
    return { ...base, status: 'skip', message: 'a registration token: `run` registers a new runner with it at start, there is no runner token to verify yet' };
  }
  const api = createRunnerApi({
    url: config.gitlab.url,
    userAgent: buildUserAgent({ version: VERSION, nodeVersion: process.version, platform: process.platform, arch: process.arch }),
    clock,
    requestTimeoutMs: o.gitlabTimeoutMs ?? 30_000,
    retry: { maxAttempts: 2 },
    ...(o.fetch && { fetch: o.fetch }),
  });
  // The same system_id and info as `run`, so GitLab's record of this runner manager stays as `run` left it.
  const { systemId } = deploymentIdentity({ fleet: config.fleet, gitlabUrl: config.gitlab.url, token: config.gitlab.token ?? config.gitlab.registrationToken! });
  const own = config.runners.find((r) => r.name === (runner?.name ?? DEFAULT_RUNNER));
  const styles = config.executors.filter((e) => own?.executors.includes(e.name) ?? true).map((e) => e.style);
  const features = buildFeatures(advertisedFeatures(styles));
  const info = buildRunnerInfo({ version: VERSION, revision: REVISION, platform: process.platform, arch: process.arch, executor: styles.includes('docker') ? 'docker' : 'shell', shell: 'bash', features });
  const saved = await savedToken(config, clock, clock.now(), runner).catch(() => undefined);
  const candidates = saved !== undefined && saved !== configured ? [saved, configured] : [configured];
  let last: unknown;
  for (const token of candidates) {
    try {
      const v = await api.verify(token, systemId, info);
      const parts = [v.id !== undefined ? `runner ${v.id}` : 'token accepted'];
      if (token !== configured) parts.push('with the rotated token saved earlier');
      if (v.tokenExpiresAt !== undefined) parts.push(`token expires ${new Date(v.tokenExpiresAt).toISOString()}`);
      return { ...base, status: 'pass', message: parts.join(', ') };
    } catch (e) {
      last = e;
      if (!(e instanceof GitLabApiError && e.kind === 'forbidden')) break;
    }
  }
  if (last instanceof GitLabApiError) {
    if (last.kind === 'forbidden') return { ...base, status: 'fail', code: 'HTTP 403', message: 'token refused: it is invalid or expired, or the runner was deleted' };
    if (last.kind === 'transport') return { ...base, status: 'fail', code: 'unreachable', message: last.message, retryable: true };
    return { ...base, status: 'fail', code: `HTTP ${last.status}`, message: last.message, retryable: last.retryable };
  }
  return { ...base, status: 'fail', code: 'Error', message: errorMessage(last) };
}

/** Whether the store of a rotated token (gitlab.rotatedToken, else stateDir) can be read; only shown for
 *  an SSM parameter, where permissions and KMS can be wrong. */
async function rotatedTokenCheck(config: FleetConfig, clock: Clock, runner?: RunnerConfig): Promise<CheckResult | undefined> {
  const configured = runner?.token ?? config.gitlab.token;
  const parameter = config.gitlab.rotatedToken?.ssmParameter;
  if (configured === undefined || parameter === undefined) return undefined;
  const base = { executor: 'gitlab', check: 'rotated-token', target: `ssm:${parameter}${runner ? `-${runner.name}` : ''}` };
  try {
    const state = await rotatedToken(config, clock, runner).readOnce();
    return { ...base, status: 'pass', message: state ? `a rotated token saved ${new Date(state.obtainedAt).toISOString()}` : 'readable; no rotated token saved yet' };
  } catch (e) {
    const code = (e as { name?: string }).name ?? 'Error';
    return { ...base, status: 'fail', code, message: errorMessage(e), retryable: !refused(e) };
  }
}

function rotatedToken(config: FleetConfig, clock: Clock, runner?: RunnerConfig): RotatedToken {
  const stateDir = config.stateDir ?? join(homedir(), '.fleetrunner');
  return new RotatedToken({ store: rotatedTokenSecretStore(config, stateDir, process.env, runner?.name), configuredToken: runner?.token ?? config.gitlab.token!, clock, logger: silentLogger });
}

/** A token rotated by an earlier `run` for the configured one, unless it has expired. */
async function savedToken(config: FleetConfig, clock: Clock, now = clock.now(), runner?: RunnerConfig): Promise<string | undefined> {
  const state = await rotatedToken(config, clock, runner).readOnce();
  return state && (state.expiresAt === undefined || state.expiresAt > now) ? state.token : undefined;
}

/** Every token the output must never show. */
async function knownTokens(config: FleetConfig): Promise<string[]> {
  const tokens = [config.gitlab.token, config.gitlab.registrationToken, ...config.runners.map((r) => r.token)].filter((t): t is string => t !== undefined);
  if (config.gitlab.token !== undefined) {
    const saved = await savedToken(config, systemClock, -Infinity).catch(() => undefined);
    if (saved !== undefined) tokens.push(saved);
  }
  for (const r of config.runners.filter((x) => x.token !== undefined)) {
    const saved = await savedToken(config, systemClock, -Infinity, r).catch(() => undefined);
    if (saved !== undefined) tokens.push(saved);
  }
  return tokens;
}
