// A clock stepped by the test and a transport whose stages do what the test scripted.

import type { Clock, JobPlan, JobStatusForAfterScript, Stage, StagePhase, TraceSink } from '../../../src/core/index.js';
import { MachineLostError } from '../../../src/core/index.js';
import type { StageTransport } from '../../../src/executors/job-session.js';
import type { StageExit } from '../../../src/executors/remote-shell.js';

export class FakeClock implements Clock {
  private sleepers: Array<{ at: number; resolve: () => void }> = [];
  constructor(private t = 1_700_000_000_000) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        this.sleepers = this.sleepers.filter((s) => s !== entry);
        reject(signal!.reason);
      };
      // As Clock.sleep promises: no listener is left on the signal once the sleep is over.
      const entry = {
        at: this.t + Math.max(0, ms),
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.sleepers.push(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Moves time on and wakes every sleeper that is due. */
  advance(ms: number): void {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.at > this.t);
    for (const s of due) s.resolve();
  }
}

/** What a scripted stage does: exit with a code, hang until stopped, lose the machine, or anything custom. */
export type StageScript =
  | { exit: number }
  | { signal: string }
  | 'hang'
  | 'lost'
  | ((stop: AbortSignal) => Promise<StageExit>);

export class ScriptedTransport implements StageTransport {
  readonly ran: string[] = [];
  readonly stopped: string[] = [];
  private readonly waiting = new Map<string, () => void>();
  private readonly startedPromises = new Map<string, Promise<void>>();

  constructor(private readonly scripts: Record<string, StageScript> = {}) {}

  /** Resolves once the named stage has started. */
  started(name: string): Promise<void> {
    let p = this.startedPromises.get(name);
    if (!p) {
      p = new Promise<void>((resolve) => this.waiting.set(name, resolve));
      this.startedPromises.set(name, p);
    }
    return p;
  }

  async runStage(stage: Stage, stop: AbortSignal): Promise<StageExit> {
    this.ran.push(stage.name);
    this.started(stage.name);
    this.waiting.get(stage.name)?.();
    stop.addEventListener('abort', () => this.stopped.push(stage.name), { once: true });
    const s = this.scripts[stage.name] ?? { exit: 0 };
    if (typeof s === 'function') return s(stop);
    if (s === 'lost') throw new MachineLostError('lost SSH connection to test machine');
    if (s === 'hang') {
      await new Promise<void>((resolve) => {
        if (stop.aborted) resolve();
        stop.addEventListener('abort', () => resolve(), { once: true });
      });
      return { signal: 'TERM' };
    }
    return 'exit' in s ? { exitCode: s.exit } : { signal: s.signal };
  }
}

export class MemoryTrace implements TraceSink {
  text = '';
  write(chunk: string | Uint8Array): void {
    this.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  }
  flush(): void {}
  secrets: string[] = [];
  addSecrets(values: readonly string[]): void {
    this.secrets.push(...values);
  }
}

const st = (name: string, phase: StagePhase): Stage => ({ name, phase, script: `: ${name}` });

/** A plan with one stage of each kind; after_script names its status (after_script:<status>). */
export function unitPlan(p: Partial<JobPlan> = {}): JobPlan {
  return {
    projectDir: '/builds/p',
    prepare: [st('get_sources', 'predefined'), st('restore_cache', 'predefined')],
    user: [st('step_script', 'user'), st('step_release', 'user')],
    after: (status: JobStatusForAfterScript) => st(`after_script:${status}`, 'after'),
    afterScriptTimeoutMs: 300_000,
    onSuccess: [st('archive_cache', 'predefined'), st('upload_artifacts_on_success', 'predefined')],
    onFailure: [st('archive_cache_on_failure', 'predefined'), st('upload_artifacts_on_failure', 'predefined')],
    cleanup: st('cleanup_file_variables', 'predefined'),
    jobTimeoutMs: 3_600_000,
    ...p,
  };
}
