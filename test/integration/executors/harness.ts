// Shared pieces for executor tests: a real local machine, a recording trace, hand-written plans.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'vitest';

import {
  silentLogger,
  type ConnectionInfo,
  type JobPayload,
  type JobPlan,
  type JobRunContext,
  type JobStatusForAfterScript,
  type Machine,
  type Stage,
  type StagePhase,
  type TraceSink,
} from '../../../src/core/index.js';
import { ShellExecutor, type ShellExecutorOptions } from '../../../src/executors/index.js';
import { LocalProvider } from '../../../src/providers/local/index.js';
import { jobPayload } from '../../helpers/job-payload.js';

export interface TestMachine {
  provider: LocalProvider;
  machine: Machine;
  info: ConnectionInfo;
  dispose(): Promise<void>;
}

export async function startMachine(): Promise<TestMachine> {
  const root = mkdtempSync(join(tmpdir(), 'fr-exec-test-'));
  // dockerGroup: the docker style's tests use these machines too (as root, each has a user of its own).
  const provider = new LocalProvider({ fleet: 'exec-test', root, bootTimeoutMs: 10_000, terminateGraceMs: 1_000, dockerGroup: true });
  const r = await provider.create(1, { fleet: 'exec-test', executor: 'local', coordinator: 'test' });
  if (r.errors.length > 0) rmSync(root, { recursive: true, force: true });
  expect(r.errors).toEqual([]);
  const machine = r.machines[0]!;
  const info = await provider.waitReady(machine);
  return {
    provider,
    machine,
    info,
    async dispose() {
      try {
        await provider.terminate([machine.id]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

/** Records what the executor writes. With `keep: false` it only counts (for large outputs). */
export class RecordingTrace implements TraceSink {
  private readonly parts: string[] = [];
  private readonly waiters: Array<{ text: string; resolve: () => void }> = [];
  private readonly decoder = new TextDecoder();
  bytes = 0;
  writes = 0;
  largestWrite = 0;
  flushes = 0;

  constructor(private readonly keep = true) {}

  secrets: string[] = [];
  addSecrets(values: readonly string[]): void {
    this.secrets.push(...values);
  }

  write(chunk: string | Uint8Array): void {
    const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    this.bytes += size;
    this.writes++;
    this.largestWrite = Math.max(this.largestWrite, size);
    if (!this.keep) return;
    this.parts.push(typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true }));
    const text = this.text();
    for (const w of [...this.waiters]) {
      if (text.includes(w.text)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  flush(): void {
    this.flushes++;
  }

  text(): string {
    return this.parts.join('');
  }

  /** Plain text: colours and section markers removed. */
  plain(): string {
    return this.text()
      .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
      .replace(/section_(start|end):\d+:[A-Za-z0-9_.-]+\r/g, '');
  }

  /** Resolves once `text` has appeared in the trace. */
  waitFor(text: string): Promise<void> {
    if (this.text().includes(text)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ text, resolve }));
  }
}

export function stage(name: string, script: string, phase: StagePhase = 'user'): Stage {
  return { name, phase, script };
}

/** A plan whose stages only echo what they are; override what a test is about. */
export function makePlan(info: ConnectionInfo, p: Partial<JobPlan> = {}): JobPlan {
  return {
    projectDir: join(info.buildsDir, 'project'),
    prepare: [stage('get_sources', 'echo "stage:get_sources"', 'predefined')],
    user: [stage('step_script', 'echo "stage:step_script"')],
    after: (status: JobStatusForAfterScript) =>
      stage('after_script', `CI_JOB_STATUS=${status}\necho "stage:after_script status=$CI_JOB_STATUS"`, 'after'),
    afterScriptTimeoutMs: 30_000,
    onSuccess: [stage('upload_artifacts_on_success', 'echo "stage:on_success"', 'predefined')],
    onFailure: [stage('upload_artifacts_on_failure', 'echo "stage:on_failure"', 'predefined')],
    cleanup: stage('cleanup_file_variables', 'echo "stage:cleanup"', 'predefined'),
    jobTimeoutMs: 60_000,
    ...p,
  };
}

let nextJobId = 1000;

export function makeJob(): JobPayload {
  const id = nextJobId++;
  return jobPayload({
    id,
    token: 'glcbt-test-token',
    job_info: { name: 'test', project_id: 1 },
    git_info: { repo_url: 'http://example.invalid/repo.git', ref: 'main', sha: '0'.repeat(40) },
    runner_info: {},
    variables: [],
  });
}

export interface TestRun {
  ctx: JobRunContext;
  trace: RecordingTrace;
  cancel(): void;
  abort(reason?: unknown): void;
}

export function makeRun(trace = new RecordingTrace()): TestRun {
  const cancel = new AbortController();
  const abort = new AbortController();
  return {
    ctx: { job: makeJob(), trace, cancel: cancel.signal, abort: abort.signal },
    trace,
    cancel: () => cancel.abort(),
    abort: (reason?: unknown) => abort.abort(reason),
  };
}

export function executorFor(plan: JobPlan, o: Partial<ShellExecutorOptions> = {}): ShellExecutor {
  return new ShellExecutor({
    planFor: () => plan,
    logger: silentLogger,
    connectTimeoutMs: 10_000,
    killGraceMs: 1_000,
    ...o,
  });
}

/** A number nobody else passes to `sleep`, so `pgrep` can find exactly that process. */
export function uniqueSleep(): string {
  return `${900 + Math.floor(Math.random() * 99)}.${Math.floor(Math.random() * 1e6)}`;
}

export function pgrep(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Order in which the stage markers appear in the trace. */
export function stagesRun(trace: RecordingTrace): string[] {
  return [...trace.plain().matchAll(/^stage:(\S+)/gm)].map((m) => m[1]!);
}
