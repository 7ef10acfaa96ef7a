// Runs the BUILT CLI (`node bin/fleetrunner.js run`) with the contract config of docs/architecture.md against the
// strict fake GitLab; only the URL, the token (through an env var) and an isolated stateDir differ.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGitLab, type FakeGitLabOptions, type JobView } from '../../src/fakegitlab/index.js';

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
  const dir = mkdtempSync(join(tmpdir(), 'fr-e2e-'));
  const configPath = join(dir, 'fleetrunner.yaml');
  writeFileSync(configPath, contractConfig(fake.url, o.concurrent, [`stateDir: ${join(dir, 'state')}`, ...(o.extra ?? [])], o.registration, o.executors, o.gitlabExtra));
  let out = '';
  const launch = () => {
    const c = spawn(process.execPath, [BIN, 'run', '--config', configPath], {
      env: { ...process.env, ...o.env, FR_E2E_TOKEN: token },
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
