import { describe, expect, it } from 'vitest';

import { silentLogger, type JobPlan } from '../../../src/core/index.js';
import { shutdownCutOff } from '../../../src/executors/job-abort.js';
import { runJobSession } from '../../../src/executors/job-session.js';
import { TraceWriter } from '../../../src/executors/trace-lines.js';
import { FakeClock, MemoryTrace, ScriptedTransport, unitPlan, type StageScript } from './fakes.js';

function session(scripts: Record<string, StageScript> = {}, plan: JobPlan = unitPlan(), confirmed?: Promise<unknown>) {
  const clock = new FakeClock();
  const transport = new ScriptedTransport(scripts);
  const trace = new MemoryTrace();
  const cancel = new AbortController();
  const abort = new AbortController();
  const result = runJobSession({
    plan,
    transport,
    trace: new TraceWriter(trace, clock),
    cancel: cancel.signal,
    abort: abort.signal,
    clock,
    startedAt: clock.now(),
    cleanupTimeoutMs: 60_000,
    lateStagesTimeoutMs: 300_000,
    logger: silentLogger,
    ...(confirmed && { confirmed }),
  });
  return { clock, transport, trace, cancel, abort, result };
}

describe('job session stage order', () => {
  it('runs prepare, user, after_script with success, on-success stages, then cleanup', async () => {
    const s = session();
    expect(await s.result).toEqual({ state: 'success' });
    expect(s.transport.ran).toEqual([
      'get_sources',
      'restore_cache',
      'step_script',
      'step_release',
      'after_script:success',
      'archive_cache',
      'upload_artifacts_on_success',
      'cleanup_file_variables',
    ]);
  });

  it('skips user stages and after_script when a prepare stage fails, but runs the failure stages', async () => {
    const s = session({ get_sources: { exit: 1 } });
    expect(await s.result).toEqual({ state: 'failed', reason: 'script_failure', exitCode: 1, message: 'exit code 1' });
    expect(s.transport.ran).toEqual([
      'get_sources',
      'archive_cache_on_failure',
      'upload_artifacts_on_failure',
      'cleanup_file_variables',
    ]);
  });

  it('stops at the first failing user stage; after_script sees failed', async () => {
    const s = session({ step_script: { exit: 42 } });
    expect(await s.result).toMatchObject({ reason: 'script_failure', exitCode: 42 });
    expect(s.transport.ran).toEqual([
      'get_sources',
      'restore_cache',
      'step_script',
      'after_script:failed',
      'archive_cache_on_failure',
      'upload_artifacts_on_failure',
      'cleanup_file_variables',
    ]);
  });

  it('treats a stage killed by a signal it did not ask for as exit 128+n', async () => {
    const s = session({ step_script: { signal: 'KILL' } });
    expect(await s.result).toMatchObject({ reason: 'script_failure', exitCode: 137 });
  });

  it('runs no after_script when the job has none', async () => {
    const s = session({}, unitPlan({ after: undefined }));
    await s.result;
    expect(s.transport.ran.some((n) => n.startsWith('after_script'))).toBe(false);
  });

  it('ignores a failing after_script, with a warning', async () => {
    const s = session({ 'after_script:success': { exit: 9 } });
    expect(await s.result).toEqual({ state: 'success' });
    expect(s.trace.text).toContain('WARNING: after_script failed, but job will continue unaffected: exit code 9');
  });

  it('fails the job with the first failing on-success stage and still runs the rest of them', async () => {
    const s = session({ archive_cache: { exit: 5 }, upload_artifacts_on_success: { exit: 6 } });
    expect(await s.result).toMatchObject({ reason: 'script_failure', exitCode: 5 });
    expect(s.transport.ran.slice(-3)).toEqual(['archive_cache', 'upload_artifacts_on_success', 'cleanup_file_variables']);
  });

  it('keeps the job error when an on-failure stage fails too', async () => {
    const s = session({ step_script: { exit: 2 }, archive_cache_on_failure: { exit: 7 } });
    expect(await s.result).toMatchObject({ reason: 'script_failure', exitCode: 2 });
    expect(s.transport.ran).toContain('upload_artifacts_on_failure');
  });

  it('only warns when cleanup fails', async () => {
    const s = session({ cleanup_file_variables: { exit: 1 } });
    expect(await s.result).toEqual({ state: 'success' });
    expect(s.trace.text).toContain('WARNING: cleanup failed: exit code 1');
  });
});

describe('job session timeouts', () => {
  it('stops the job at its deadline: job_execution_timeout, no time left for after_script', async () => {
    const s = session({ step_script: 'hang' }, unitPlan({ jobTimeoutMs: 10_000 }));
    await s.transport.started('step_script');
    s.clock.advance(10_000);
    expect(await s.result).toEqual({
      state: 'failed',
      reason: 'job_execution_timeout',
      message: 'execution took longer than 10 seconds',
    });
    expect(s.transport.stopped).toEqual(['step_script']);
    expect(s.transport.ran.slice(2)).toEqual([
      'step_script',
      'archive_cache_on_failure',
      'upload_artifacts_on_failure',
      'cleanup_file_variables',
    ]);
    expect(s.trace.text).toContain('after_script skipped: the job deadline was reached');
  });

  it('counts the deadline from the job start, prepare stages included', async () => {
    const s = session({ get_sources: 'hang' }, unitPlan({ jobTimeoutMs: 5_000 }));
    await s.transport.started('get_sources');
    s.clock.advance(5_000);
    expect(await s.result).toMatchObject({ reason: 'job_execution_timeout' });
    expect(s.transport.ran).not.toContain('step_script');
  });

  it('bounds user stages by the script timeout, then runs after_script with timedout', async () => {
    const s = session({ step_script: 'hang' }, unitPlan({ scriptTimeoutMs: 2_000 }));
    await s.transport.started('step_script');
    s.clock.advance(2_000);
    expect(await s.result).toMatchObject({ reason: 'job_execution_timeout', message: 'execution took longer than 2 seconds' });
    expect(s.transport.ran).toContain('after_script:timedout');
  });

  it('bounds after_script by its own timeout and ignores hitting it', async () => {
    const s = session({ 'after_script:success': 'hang' }, unitPlan({ afterScriptTimeoutMs: 1_000 }));
    await s.transport.started('after_script:success');
    s.clock.advance(1_000);
    expect(await s.result).toEqual({ state: 'success' });
    expect(s.trace.text).toContain('after_script failed, but job will continue unaffected: execution took longer than 1 seconds');
  });

  it('bounds after_script by what is left of the job deadline', async () => {
    const plan = unitPlan({ jobTimeoutMs: 10_000, afterScriptTimeoutMs: 300_000 });
    const s = session(
      {
        step_script: async () => {
          s.clock.advance(9_000);
          return { exitCode: 0 };
        },
        'after_script:success': 'hang',
      },
      plan,
    );
    await s.transport.started('after_script:success');
    s.clock.advance(1_000);
    expect(await s.result).toMatchObject({ reason: 'job_execution_timeout' });
  });
});

describe('job session cancel and abort', () => {
  it('graceful cancel stops user stages, runs after_script with canceled and the failure stages', async () => {
    const s = session({ step_script: 'hang' });
    await s.transport.started('step_script');
    s.cancel.abort();
    expect(await s.result).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(s.transport.ran.slice(2)).toEqual([
      'step_script',
      'after_script:canceled',
      'archive_cache_on_failure',
      'upload_artifacts_on_failure',
      'cleanup_file_variables',
    ]);
  });

  it('graceful cancel during prepare skips after_script', async () => {
    const s = session({ get_sources: 'hang' });
    await s.transport.started('get_sources');
    s.cancel.abort();
    expect(await s.result).toMatchObject({ reason: 'job_canceled' });
    expect(s.transport.ran).toEqual(['get_sources', 'archive_cache_on_failure', 'upload_artifacts_on_failure', 'cleanup_file_variables']);
  });

  it('graceful cancel does not stop after_script', async () => {
    let release!: () => void;
    const s = session({
      step_script: { exit: 0 },
      'after_script:success': () => new Promise((resolve) => (release = () => resolve({ exitCode: 0 }))),
    });
    await s.transport.started('after_script:success');
    s.cancel.abort();
    release();
    await s.result;
    expect(s.transport.stopped).toEqual([]);
  });

  it('hard abort stops everything at once: no after_script, no failure stages, cleanup still runs', async () => {
    const s = session({ step_script: 'hang' });
    await s.transport.started('step_script');
    s.abort.abort();
    expect(await s.result).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(s.transport.ran.slice(2)).toEqual(['step_script', 'cleanup_file_variables']);
  });

  it('hard abort during after_script skips the rest', async () => {
    const s = session({ step_script: { exit: 1 }, 'after_script:failed': 'hang' });
    await s.transport.started('after_script:failed');
    s.abort.abort();
    expect(await s.result).toMatchObject({ reason: 'job_canceled' });
    expect(s.transport.ran.slice(-2)).toEqual(['after_script:failed', 'cleanup_file_variables']);
  });

  it('takes the failure reason of a hard abort from the abort signal', async () => {
    const s = session({ step_script: 'hang' });
    await s.transport.started('step_script');
    s.abort.abort(shutdownCutOff('coordinator shutdown timeout'));
    expect(await s.result).toEqual({ state: 'failed', reason: 'runner_system_failure', message: 'coordinator shutdown timeout' });
  });
});

describe('job session before GitLab confirmed the job', () => {
  const settle = () => new Promise((r) => setTimeout(r, 5));
  function unconfirmed() {
    let confirm!: () => void;
    const confirmed = new Promise<void>((r) => (confirm = r));
    return { confirmed, confirm };
  }

  it('runs the prepare stages at once; the user stages wait for the confirmation', async () => {
    const c = unconfirmed();
    const s = session({}, unitPlan(), c.confirmed);
    await settle();
    expect(s.transport.ran).toEqual(['get_sources', 'restore_cache']);
    c.confirm();
    expect(await s.result).toEqual({ state: 'success' });
    expect(s.transport.ran.slice(2, 4)).toEqual(['step_script', 'step_release']);
  });

  it('a job stopped while it waits runs no user stage and no after_script; clean-up still runs', async () => {
    const c = unconfirmed();
    const s = session({}, unitPlan(), c.confirmed);
    await settle();
    s.abort.abort(new Error('GitLab no longer wants the job'));
    expect(await s.result).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(s.transport.ran).toEqual(['get_sources', 'restore_cache', 'cleanup_file_variables']);
  });

  it('after a prepare stage failed, the final stages wait for the confirmation too (they may call GitLab)', async () => {
    const c = unconfirmed();
    const s = session({ get_sources: { exit: 1 } }, unitPlan(), c.confirmed);
    await settle();
    expect(s.transport.ran).toEqual(['get_sources']);
    c.confirm();
    expect(await s.result).toMatchObject({ reason: 'script_failure' });
    expect(s.transport.ran).toEqual(['get_sources', 'archive_cache_on_failure', 'upload_artifacts_on_failure', 'cleanup_file_variables']);
  });

  it('a prepare stage still running when the job is aborted is stopped, as at any time', async () => {
    const c = unconfirmed();
    const s = session({ get_sources: 'hang' }, unitPlan(), c.confirmed);
    await s.transport.started('get_sources');
    s.abort.abort(new Error('canceled before it started'));
    c.confirm();
    expect(await s.result).toMatchObject({ state: 'failed', reason: 'job_canceled' });
    expect(s.transport.ran).toEqual(['get_sources', 'cleanup_file_variables']);
  });
});

describe('job session machine loss', () => {
  it('ends as runner_system_failure and runs nothing more on a lost machine', async () => {
    const s = session({ step_script: 'lost' });
    expect(await s.result).toEqual({
      state: 'failed',
      reason: 'runner_system_failure',
      message: 'lost SSH connection to test machine',
    });
    expect(s.transport.ran.slice(2)).toEqual(['step_script']);
  });

  it('keeps the job’s own failure when the machine is lost afterwards', async () => {
    const s = session({ step_script: { exit: 4 }, 'after_script:failed': 'lost' });
    expect(await s.result).toMatchObject({ reason: 'script_failure', exitCode: 4 });
    expect(s.trace.text).toContain('WARNING: lost SSH connection to test machine');
  });
});
