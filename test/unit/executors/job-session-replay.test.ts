// A successor continues a job session from the machine's records: stages that already ended are replayed
// (their recorded ends decide, not a re-run), the stage that was running is the next one the transport
// runs, and every rule between stages decides as it did the first time. The fake clock shows that a
// deadline passed meanwhile does not turn a replayed stage into a timeout.
import { describe, expect, it } from 'vitest';

import { silentLogger, type Stage } from '../../../src/core/index.js';
import { runJobSession, type RecordedEnd, type StageProgress } from '../../../src/executors/job-session.js';
import type { StageExit } from '../../../src/executors/remote-shell.js';
import { TraceWriter } from '../../../src/executors/trace-lines.js';
import { FakeClock, MemoryTrace, ScriptedTransport, unitPlan, type StageScript } from './fakes.js';

class RecordingTransport extends ScriptedTransport {
  readonly calls: Array<{ name: string; seq: number; replayed: boolean; ends: number; scriptStartedAt?: number }> = [];
  override runStage(stage: Stage, stop: AbortSignal, progress?: StageProgress): Promise<StageExit> {
    this.calls.push({ name: stage.name, seq: progress!.seq, replayed: progress!.replayed !== undefined, ends: progress!.ends.length, ...(progress!.scriptStartedAt !== undefined && { scriptStartedAt: progress!.scriptStartedAt }) });
    return super.runStage(stage, stop);
  }
}

function resumed(replay: RecordedEnd[], scripts: Record<string, StageScript> = {}, o: { elapsedMs?: number; scriptTimeoutMs?: number; scriptAgoMs?: number } = {}) {
  const clock = new FakeClock();
  const startedAt = clock.now() - (o.elapsedMs ?? 0);
  const transport = new RecordingTransport(scripts);
  const trace = new MemoryTrace();
  const result = runJobSession({
    plan: unitPlan(o.scriptTimeoutMs !== undefined ? { scriptTimeoutMs: o.scriptTimeoutMs } : {}),
    transport,
    trace: new TraceWriter(trace, clock),
    cancel: new AbortController().signal,
    abort: new AbortController().signal,
    clock,
    startedAt,
    cleanupTimeoutMs: 60_000,
    lateStagesTimeoutMs: 300_000,
    logger: silentLogger,
    replay,
    ...(o.scriptAgoMs !== undefined && { scriptStartedAt: clock.now() - o.scriptAgoMs }),
  });
  return { transport, trace, result };
}

const ok = (name: string): RecordedEnd => ({ name, kind: 'exited', exitCode: 0 });

describe('continuing a job session from the machine', () => {
  it('replays the stages that ended and runs the rest in order, numbering them as the first coordinator did', async () => {
    const s = resumed([ok('get_sources'), ok('restore_cache')]);
    expect(await s.result).toEqual({ state: 'success' });
    expect(s.transport.calls.map((c) => [c.name, c.seq, c.replayed])).toEqual([
      ['get_sources', 1, true],
      ['restore_cache', 2, true],
      ['step_script', 3, false],
      ['step_release', 4, false],
      ['after_script:success', 5, false],
      ['archive_cache', 6, false],
      ['upload_artifacts_on_success', 7, false],
      ['cleanup_file_variables', 8, false],
    ]);
    // Each stage starts knowing how every earlier one ended (what session.json records).
    expect(s.transport.calls.map((c) => c.ends)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('a recorded script failure still sends the job down the failure path, with its exit code', async () => {
    const s = resumed([ok('get_sources'), ok('restore_cache'), { name: 'step_script', kind: 'exited', exitCode: 42 }]);
    expect(await s.result).toMatchObject({ state: 'failed', reason: 'script_failure', exitCode: 42 });
    expect(s.transport.calls.filter((c) => !c.replayed).map((c) => c.name)).toEqual(['after_script:failed', 'archive_cache_on_failure', 'upload_artifacts_on_failure', 'cleanup_file_variables']);
  });

  it('a recorded stop keeps its meaning: a canceled step is a canceled job, not exit 143', async () => {
    const s = resumed([ok('get_sources'), ok('restore_cache'), { name: 'step_script', kind: 'stopped', by: 'cancel' }]);
    expect(await s.result).toMatchObject({ state: 'failed', reason: 'job_canceled' });
    expect(s.transport.calls.find((c) => !c.replayed)?.name).toBe('after_script:canceled');
  });

  it('the deadline passing while no coordinator watched does not rewrite stages that ended in time', async () => {
    const s = resumed([ok('get_sources'), ok('restore_cache')], {}, { elapsedMs: 2 * 3_600_000 });
    const outcome = await s.result;
    // The replayed stages keep their ends; the first stage run now meets the deadline.
    expect(s.transport.calls.filter((c) => c.replayed).map((c) => c.name)).toEqual(['get_sources', 'restore_cache']);
    expect(outcome).toMatchObject({ state: 'failed', reason: 'job_execution_timeout' });
  });

  it('the script timeout counts from when the user stages began the first time, not from the takeover', async () => {
    const s = resumed([ok('get_sources'), ok('restore_cache')], { step_script: 'hang' }, { scriptTimeoutMs: 60_000, scriptAgoMs: 61_000 });
    const outcome = await s.result;
    expect(outcome).toMatchObject({ state: 'failed', reason: 'job_execution_timeout', message: 'execution took longer than 60 seconds' });
    expect(s.transport.calls.map((c) => c.name)).not.toContain('step_script');
  });

  it('tells every user stage when the script began, for session.json', async () => {
    const s = resumed([ok('get_sources'), ok('restore_cache')], {}, { scriptTimeoutMs: 60_000, scriptAgoMs: 1_000 });
    await s.result;
    const step = s.transport.calls.find((c) => c.name === 'step_script');
    const cleanup = s.transport.calls.find((c) => c.name === 'cleanup_file_variables');
    expect(step?.scriptStartedAt).toBeTypeOf('number');
    expect(cleanup?.scriptStartedAt).toBe(step?.scriptStartedAt);
    expect(s.transport.calls.find((c) => c.name === 'get_sources')?.scriptStartedAt).toBeUndefined();
  });

  it('a plan that no longer matches the records fails the job as a system failure and only cleans up', async () => {
    const s = resumed([ok('get_sources'), ok('something_else')]);
    expect(await s.result).toMatchObject({
      state: 'failed',
      reason: 'runner_system_failure',
      message: expect.stringMatching(/stage 2 was something_else on the machine but is restore_cache now/),
    });
    expect(s.transport.calls.filter((c) => !c.replayed).map((c) => c.name)).toEqual(['cleanup_file_variables']);
  });
});
