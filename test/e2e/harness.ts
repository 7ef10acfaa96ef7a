// Runs the BUILT CLI (`node bin/fleetrunner.js run`) with the contract config of docs/architecture.md against the
// strict fake GitLab; only the URL, the token (through an env var) and an isolated stateDir differ.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGitLab, type AddRunnerOptions, type FakeGitLabOptions, type JobView } from '../../src/fakegitlab/index.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetrunner.js');

export interface Stack {
  fake: FakeGitLab;
  token: string;
  dir: string;
  child: ChildProcess;
  /** Kills the coordinator with SIGKILL (a crash) and starts a new one with the same config. */
  crashAndRestart(): Promise<void>;
  /** Everything the coordinator printed so far. */
  log(): string;
  /** Starts a new coordinator process with the same config file (the previous one must have exited). */
  launchAgain(): void;
  /** Resolves with the current coordinator's exit code, or 'timeout'. */
  waitExit(timeoutMs: number): Promise<number | null | 'timeout'>;
  /** The config file (tests may rewrite it between launches). */
  configPath: string;
  /** SIGTERM (or the given signal), then the exit code (or 'timeout'). */
  stop(timeoutMs?: number, signal?: NodeJS.Signals): Promise<number | null | 'timeout'>;
  cleanup(): Promise<void>;
}

export interface StackOptions {
  fake?: FakeGitLabOptions;
  /** Replaces `concurrent: 4` of the contract config. */
  concurrent?: number;
  /** Extra top-level YAML lines (keys may be added to the contract). */
  extra?: string[];
  /** Use the fake's legacy registration token (gitlab.registrationToken) instead of a glrt- token. */
  registration?: boolean;
  /** Replaces the contract's `executors:` list (YAML lines, indented as list items). */
  executors?: string[];
  /** Extra lines in the `gitlab:` block, indented by two spaces. */
  gitlabExtra?: string[];
  /** Extra environment for the coordinator process. */
  env?: Record<string, string>;
  /** More runners in the fake GitLab (for `runners:`): each one's token is in the coordinator's
   *  environment under `env`. */
  moreRunners?: Array<AddRunnerOptions & { env: string }>;
  /** As on Fargate: every launch gets an empty HOME of its own and the config names no stateDir, so
   *  nothing of an earlier process's disk is there. */
  freshHome?: boolean;
}

export function contractConfig(url: string, concurrent = 4, extra: string[] = [], registration = false, executors?: string[], gitlabExtra: string[] = []): string {
  return [
    '# fleetrunner.yaml — the smallest working configuration',
    'gitlab:',
    `  url: ${url}`,
    registration ? '  registrationToken: ${FR_E2E_TOKEN}' : '  token: ${FR_E2E_TOKEN}   # runner authentication token',
    ...gitlabExtra,
    `concurrent: ${concurrent}`,
    ...extra,
    'executors:',
    ...(executors ?? [
      '  - name: local',
      '    provider: local                  # machines are sshd processes on this host',
      '    style: shell',
      '    maxMachines: 4',
    ]),
    '',
  ].join('\n');
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const fake = new FakeGitLab(o.fake);
  await fake.start();
  const token = o.registration ? fake.registrationToken : fake.addRunner().token;
  const moreTokens = Object.fromEntries((o.moreRunners ?? []).map(({ env, ...r }) => [env, fake.addRunner(r).token]));
  const dir = mkdtempSync(join(tmpdir(), 'fr-e2e-'));
  const configPath = join(dir, 'fleetrunner.yaml');
  const stateLines = o.freshHome ? [] : [`stateDir: ${join(dir, 'state')}`];
  writeFileSync(configPath, contractConfig(fake.url, o.concurrent, [...stateLines, ...(o.extra ?? [])], o.registration, o.executors, o.gitlabExtra));
  let out = '';
  let launches = 0;
  const launch = () => {
    const home = o.freshHome ? join(dir, `home-${++launches}`) : undefined;
    if (home) mkdirSync(home, { mode: 0o700 });
    const c = spawn(process.execPath, [BIN, 'run', '--config', configPath], {
      env: { ...process.env, ...o.env, ...moreTokens, FR_E2E_TOKEN: token, ...(home && { HOME: home }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return { c, exit: new Promise<number | null>((resolve) => c.on('exit', (code) => resolve(code))) };
  };
  let { c: child, exit: exited } = launch();
  return {
    fake,
    token,
    dir,
    get child() {
      return child;
    },
    async crashAndRestart() {
      child.kill('SIGKILL');
      await exited;
      ({ c: child, exit: exited } = launch());
    },
    log: () => out,
    configPath,
    launchAgain() {
      if (child.exitCode === null && child.signalCode === null) throw new Error('the coordinator is still running');
      ({ c: child, exit: exited } = launch());
    },
    waitExit(timeoutMs: number) {
      return Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs))]);
    },
    async stop(timeoutMs = 30_000, signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs))]);
    },
    async cleanup() {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      await fake.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createSimplePipeline(fake: FakeGitLab, jobs: Parameters<FakeGitLab['createPipeline']>[1]) {
  const project = await fake.createProject({ path: `e2e/p${Math.floor(Math.random() * 1e9)}`, files: { 'README.md': 'e2e\n' } });
  return fake.createPipeline(project, jobs);
}

export async function waitFinished(fake: FakeGitLab, id: number, timeoutMs = 60_000): Promise<JobView> {
  return fake.waitForJobState(id, ['success', 'failed', 'canceled', 'skipped'], timeoutMs);
}
