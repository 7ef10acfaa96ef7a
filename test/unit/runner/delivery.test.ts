// A job's final state outlives the process that ran it: the journal keeps the outcome and the spooled trace
// until GitLab took them, and the next start delivers them (not a "coordinator restarted" failure).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { Executor, JobRunContext } from '../../../src/core/executor.js';
import { silentLogger } from '../../../src/core/logger.js';
import { failed, type JobOutcome } from '../../../src/core/outcome.js';
import type { TraceLog } from '../../../src/core/trace.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { JobJournal } from '../../../src/runner/job-journal.js';
import { JobRun, ShutdownAbort } from '../../../src/runner/job-run.js';
import type { JobChannel } from '../../../src/runner/ports.js';
import { recoverInterruptedJobs } from '../../../src/runner/recover.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fr-delivery-'));
  dirs.push(d);
  return d;
};

const GITLAB = 'http://gitlab.invalid';

class ScriptExecutor implements Executor {
  readonly style = 'shell' as const;
  constructor(private readonly outcome: JobOutcome) {}
  async run(_m: unknown, ctx: JobRunContext): Promise<JobOutcome> {
    ctx.trace.write('the job ran\n');
    return this.outcome;
  }
}

/** A channel whose delivery ends only when told: 'delivered', or pending once abandoned. */
function heldChannel() {
  const finals: JobOutcome[] = [];
  const traces: string[] = [];
  let settle: ((v: 'delivered' | 'pending') => void) | undefined;
  const open = (_job: unknown, log: TraceLog): JobChannel => ({
    acknowledge: async () => 'ok',
    start: () => undefined,
    finish: (outcome) => {
      finals.push(outcome);
      return new Promise((resolve) => {
        settle = (v) => {
          void log.read(0, log.size).then((b) => traces.push(Buffer.from(b).toString()));
          resolve(v);
        };
      });
    },
    abandon: () => settle?.('pending'),
  });
  return { open, finals, traces, deliver: () => settle?.('delivered'), get waiting() { return settle !== undefined; } };
}

function jobRun(journal: JobJournal, spoolDir: string, channel: ReturnType<typeof heldChannel>, outcome: JobOutcome) {
  const job = jobPayload({ id: 41, token: 'job-token-41', features: { failure_reasons: ['script_failure'] } });
  const fleet = new ExecutorFleet({ provider: new MemoryProvider(), tags: { fleet: 'f', executor: 'e', coordinator: 'c' }, logger: silentLogger, clock: systemClock, retryDelayMs: 1 });
  return new JobRun({
    job,
    runtime: { name: 'e', executor: new ScriptExecutor(outcome), fleet },
    openChannel: channel.open,
    spoolDir,
    outputLimitBytes: 1 << 20,
    logger: silentLogger,
    clock: systemClock,
    banner: 'banner\n',
    extraSecrets: [],
    journal,
    gitlabUrl: GITLAB,
  });
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
};

describe('final state delivery across restarts', () => {
  it('records the outcome in the journal while delivering, and removes the entry and spool once delivered', async () => {
    const state = tmp();
    const journal = new JobJournal(join(state, 'jobs'));
    const channel = heldChannel();
    const outcome = failed('script_failure', undefined, 3);
    const done = jobRun(journal, state, channel, outcome).run();
    await until(() => channel.waiting);
    const [entry] = journal.leftovers(GITLAB);
    expect(entry).toMatchObject({ jobId: 41, outcome: { state: 'failed', reason: 'script_failure', exitCode: 3 } });
    expect(existsSync(entry!.spoolPath)).toBe(true);
    channel.deliver();
    await done;
    expect(journal.leftovers(GITLAB)).toEqual([]);
    expect(existsSync(entry!.spoolPath)).toBe(false);
  });

  it('a cut-off delivery keeps the entry and the spooled trace; the next start delivers the real outcome', async () => {
    const state = tmp();
    const journal = new JobJournal(join(state, 'jobs'));
    const first = heldChannel();
    const run = jobRun(journal, state, first, failed('script_failure', undefined, 3));
    const done = run.run();
    await until(() => first.waiting);
    run.abort(new ShutdownAbort('shutdownTimeout elapsed'));
    await done;
    const [entry] = journal.leftovers(GITLAB);
    expect(entry?.outcome).toMatchObject({ state: 'failed', reason: 'script_failure', exitCode: 3 });
    expect(readFileSync(entry!.spoolPath, 'utf8')).toContain('the job ran');

    // The next process: recovery delivers the recorded outcome and trace, beside whatever else runs.
    const second = heldChannel();
    const recovery = recoverInterruptedJobs({ journal, gitlabUrl: GITLAB, openChannel: second.open, outputLimitBytes: 1 << 20, spoolFallback: join(state, 'recovered'), logger: silentLogger });
    expect(recovery.count).toBe(1);
    await until(() => second.waiting);
    second.deliver();
    await recovery.done;
    expect(second.finals).toEqual([{ state: 'failed', reason: 'script_failure', exitCode: 3 }]);
    await until(() => second.traces.length === 1);
    expect(second.traces[0]).toContain('the job ran');
    expect(second.traces[0]).not.toContain('stopped unexpectedly');
    expect(journal.leftovers(GITLAB)).toEqual([]);
  });

  it('a job that was running when the coordinator died is reported as a system failure; an abandoned report stays journaled', async () => {
    const state = tmp();
    const journal = new JobJournal(join(state, 'jobs'));
    journal.record({ jobId: 7, jobToken: 'job-token-7', gitlabUrl: GITLAB, spoolPath: join(state, 'gone.trace'), startedAt: 1 });
    const channel = heldChannel();
    const recovery = recoverInterruptedJobs({ journal, gitlabUrl: GITLAB, openChannel: channel.open, outputLimitBytes: 1 << 20, spoolFallback: join(state, 'recovered'), logger: silentLogger });
    await until(() => channel.waiting);
    recovery.abandon();
    await recovery.done;
    expect(channel.finals).toEqual([{ state: 'failed', reason: 'runner_system_failure', message: 'coordinator restarted' }]);
    const [entry] = journal.leftovers(GITLAB);
    expect(entry?.outcome).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
    expect(readFileSync(entry!.spoolPath, 'utf8')).toContain('coordinator stopped unexpectedly');
  });
});
