// A job whose machine reports an interruption runs again once, from the start, on a new on-demand machine.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { systemClock } from '../../../src/core/clock.js';
import type { ConnectionInfo, Executor, JobRunContext } from '../../../src/core/index.js';
import { interrupted, silentLogger, type JobOutcome, type JobVariable, type MachineInterruption } from '../../../src/core/index.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { retryOnInterruption } from '../../../src/runner/interruption-rerun.js';
import { JobRun } from '../../../src/runner/job-run.js';
import type { JobChannel } from '../../../src/runner/ports.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';
import { testToken } from '../../helpers/tokens.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const notice: MachineInterruption = { action: 'terminate', time: '2026-12-06T22:10:00Z' };

/** Runs the scripted outcomes in order, one per run, and records the machines it ran on. */
class ScriptedExecutor implements Executor {
  readonly style = 'shell' as const;
  machines: string[] = [];
  /** ctx.startedAt of each run (the deadline's start). */
  starts: Array<number | undefined> = [];
  constructor(private readonly outcomes: JobOutcome[]) {}
  async run(machine: ConnectionInfo, ctx: JobRunContext): Promise<JobOutcome> {
    this.machines.push(machine.host);
    this.starts.push(ctx.startedAt);
    await new Promise((r) => setTimeout(r, 5));
    ctx.trace.write(`run ${this.machines.length} on ${machine.host}\n`);
    return this.outcomes.shift() ?? { state: 'success' };
  }
}

async function runJob(outcomes: JobOutcome[], variables: JobVariable[] = []) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-rerun-'));
  dirs.push(spoolDir);
  const provider = new MemoryProvider();
  const executor = new ScriptedExecutor(outcomes);
  const fleet = new ExecutorFleet({ provider, tags: { fleet: 'f', executor: 'spot', coordinator: 'c' }, logger: silentLogger, clock: systemClock, maxMachines: 1 });
  const interruptions: MachineInterruption[] = [];
  let trace = '';
  let final: JobOutcome | undefined;
  const job = jobPayload({ id: 7, token: testToken('glcbt-'), job_info: { name: 'j', project_id: 1 }, git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' }, runner_info: { timeout: 60 }, variables });
  const run = new JobRun({
    job,
    runtime: { name: 'spot', executor, fleet, onInterrupted: (i) => interruptions.push(i) },
    openChannel: (_j, log): JobChannel => ({
      acknowledge: async () => 'ok',
      start: () => undefined,
      finish: async (o) => {
        final = o;
        trace = Buffer.from(await log.read(0, log.size)).toString();
        return 'delivered';
      },
      abandon: () => undefined,
    }),
    spoolDir,
    outputLimitBytes: 1 << 20,
    logger: silentLogger,
    clock: systemClock,
    banner: 'Running with fleetrunner\n',
    extraSecrets: [],
  });
  const outcome = await run.run();
  return { outcome, final, trace, provider, executor, interruptions };
}

describe('a job whose machine is interrupted', () => {
  it('runs again once, from the start, on a new on-demand machine, and ends with the rerun\'s outcome', async () => {
    const r = await runJob([interrupted(notice), { state: 'success' }]);
    expect(r.final).toEqual({ state: 'success' });
    expect(r.executor.machines).toEqual(['m-1', 'm-2']);
    expect(r.provider.createOptions).toEqual([{}, { market: 'on-demand' }]);
    // The interrupted machine is removed, never back to a pool.
    expect(r.provider.terminated).toEqual(['m-1', 'm-2']);
    expect(r.interruptions).toEqual([notice]);
    expect(r.trace).toMatch(/run 1 on m-1\n.*WARNING: running the job again, from the start, on a new on-demand machine.*\n.*run 2 on m-2\n/s);
  });

  it('runs again within the first attempt\'s deadline: the job gets its timeout once, not twice', async () => {
    const r = await runJob([interrupted(notice)]);
    expect(r.executor.starts).toHaveLength(2);
    expect(r.executor.starts[0]).toBeUndefined(); // the first attempt's deadline counts from its own start
    expect(r.executor.starts[1]).toBeTypeOf('number');
    expect(r.executor.starts[1]!).toBeLessThan(Date.now() - 4);
  });

  it('fails as a system failure naming the interruption when the job opts out', async () => {
    const r = await runJob([interrupted(notice), { state: 'success' }], [{ key: 'FLEETRUNNER_RETRY_ON_INTERRUPTION', value: 'false' }]);
    expect(r.final).toEqual({
      state: 'failed',
      reason: 'runner_system_failure',
      message: 'the machine got an interruption notice from its cloud (action terminate, at 2026-12-06T22:10:00Z); not run again because FLEETRUNNER_RETRY_ON_INTERRUPTION is "false"',
    });
    expect(r.executor.machines).toEqual(['m-1']);
    expect(r.provider.terminated).toEqual(['m-1']);
    expect(r.interruptions).toHaveLength(1);
    expect(r.trace).toContain('ERROR: Job failed (system failure): the machine got an interruption notice from its cloud (action terminate');
  });

  it('is not run a third time when the rerun is interrupted too', async () => {
    const r = await runJob([interrupted(notice), interrupted({ action: 'stop' })]);
    expect(r.final).toMatchObject({ state: 'failed', reason: 'runner_system_failure', message: expect.stringMatching(/action stop\) again.*not run a third time/) });
    expect(r.final).not.toHaveProperty('interruption');
    expect(r.executor.machines).toHaveLength(2);
    expect(r.interruptions).toHaveLength(2);
  });

  it('leaves other outcomes alone', async () => {
    const r = await runJob([{ state: 'failed', reason: 'runner_system_failure', message: 'lost SSH connection' }]);
    expect(r.final).toMatchObject({ message: 'lost SSH connection' });
    expect(r.executor.machines).toHaveLength(1);
    expect(r.interruptions).toHaveLength(0);
  });
});

describe('retryOnInterruption', () => {
  const withVars = (...variables: JobVariable[]) => jobPayload({ id: 1, token: testToken('glcbt-'), job_info: { name: 'j', project_id: 1 }, git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' }, runner_info: { timeout: 60 }, variables });
  it.each([
    [[], true],
    [[{ key: 'FLEETRUNNER_RETRY_ON_INTERRUPTION', value: 'false' }], false],
    [[{ key: 'FLEETRUNNER_RETRY_ON_INTERRUPTION', value: ' FALSE ' }], false],
    [[{ key: 'FLEETRUNNER_RETRY_ON_INTERRUPTION', value: 'true' }], true],
    [[{ key: 'FLEETRUNNER_RETRY_ON_INTERRUPTION', value: 'false' }, { key: 'FLEETRUNNER_RETRY_ON_INTERRUPTION', value: 'true' }], true],
  ])('%j → %s', (vars, expected) => {
    expect(retryOnInterruption(withVars(...(vars as JobVariable[])))).toBe(expected);
  });
});
