// A spot interruption notice mid-job, through the BUILT CLI (`npm run build` first) with local machines: the
// test writes the notice into the running job's machine's stateDir, as the instance agent does on EC2
// (templates/ec2-user-data.yaml). The job runs again on a new machine and succeeds, the interruption in its
// trace, and the first machine is gone; with FLEETRUNNER_RETRY_ON_INTERRUPTION: "false" it fails instead.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
let marks: string | undefined;
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
  if (marks) rmSync(marks, { recursive: true, force: true });
  marks = undefined;
});

/** Each run of the job leaves a file with its machine's CI_BUILDS_DIR, then waits for `go`. */
const SCRIPT = [
  'echo "attempt on $CI_BUILDS_DIR"',
  'printf "%s\\n" "$CI_BUILDS_DIR" > "$(mktemp "$FR_MARKS/run.XXXXXX")"',
  'for i in $(seq 1 600); do [ -e "$FR_MARKS/go" ] && break; sleep 0.1; done',
  'test -e "$FR_MARKS/go"',
  'echo "finished on $CI_BUILDS_DIR"',
];

/** The builds dirs of the machines the job ran on so far (a second run starts only after the first ended). */
function runs(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith('run.'))
    .map((f) => readFileSync(join(dir, f), 'utf8').trim())
    .filter((b) => b !== '');
}

async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Local machines keep builds, cache and state side by side (src/providers/local/machine-dir.ts). */
const stateDirOf = (buildsDir: string) => join(dirname(buildsDir), 'state');

async function interruptFirstRun(s: Stack, variables: Record<string, string> = {}) {
  marks = mkdtempSync(join(tmpdir(), 'fr-e2e-marks-'));
  // Machines of a root coordinator log in as users of their own: they must be able to leave their marks.
  chmodSync(marks, 0o777);
  const dir = marks;
  const p = await createSimplePipeline(s.fake, [{ name: 'spot', variables: { FR_MARKS: dir, ...variables }, script: SCRIPT }]);
  const id = p.jobIds[0]!;
  const first = await until(() => runs(dir)[0], 'the first run to start');
  expect(runs(dir)).toHaveLength(1);
  // The coordinator touches the heartbeat while the job runs (what the instance's watchdog looks for).
  await until(() => (existsSync(join(stateDirOf(first), 'heartbeat')) ? true : undefined), 'the heartbeat', 15_000);
  writeFileSync(join(stateDirOf(first), 'interruption'), '{"action":"terminate","time":"2026-12-06T22:10:00Z"}\n', { mode: 0o644 });
  return { id, first, dir };
}

describe('e2e: spot interruption notice mid-job', () => {
  it('runs the job again, from the start, on a new machine: success, the interruption in the trace, the first machine gone', async () => {
    stack = await startStack();
    const { id, first, dir } = await interruptFirstRun(stack);
    const second = await until(() => runs(dir).find((b) => b !== first), 'the job to run again', 60_000);
    expect(second).not.toBe(first);
    // The first machine is gone once the job left it: removed, never back to a pool.
    await until(() => (existsSync(first) ? undefined : true), 'the interrupted machine to be removed', 30_000);
    writeFileSync(join(dir, 'go'), '');
    const job = await waitFinished(stack.fake, id, 60_000);
    expect(job.state).toBe('success');
    const t = job.traceText;
    expect(t).toContain(`attempt on ${first}`);
    expect(t).toContain('WARNING: the machine got an interruption notice from its cloud (action terminate, at 2026-12-06T22:10:00Z): the job\'s stages were stopped');
    expect(t).toContain('WARNING: running the job again, from the start, on a new on-demand machine');
    expect(t).toContain(`attempt on ${second}`);
    expect(t).toContain(`finished on ${second}`);
    expect(t).not.toContain(`finished on ${first}`);
    expect(t.indexOf('running the job again')).toBeLessThan(t.indexOf(`attempt on ${second}`));
    expect(t).toContain('Job succeeded');
    expect(stack.log()).toMatch(/job interrupted with its machine.*"decision":"rerun"|"decision":"rerun".*job interrupted with its machine/);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 180_000);

  it('with FLEETRUNNER_RETRY_ON_INTERRUPTION "false", fails as runner_system_failure naming the interruption', async () => {
    stack = await startStack();
    const { id, first, dir } = await interruptFirstRun(stack, { FLEETRUNNER_RETRY_ON_INTERRUPTION: 'false' });
    const job = await waitFinished(stack.fake, id, 60_000);
    expect(job).toMatchObject({ state: 'failed', failureReason: 'runner_system_failure' });
    expect(job.traceText).toContain('ERROR: Job failed (system failure): the machine got an interruption notice from its cloud (action terminate, at 2026-12-06T22:10:00Z); not run again because FLEETRUNNER_RETRY_ON_INTERRUPTION is "false"');
    // One run only (the marks themselves go with the machine's user when the coordinator runs as root).
    expect(job.traceText.match(/^attempt on \//gm)).toHaveLength(1);
    expect(existsSync(join(dir, 'go'))).toBe(false);
    await until(() => (existsSync(first) ? undefined : true), 'the interrupted machine to be removed', 30_000);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 180_000);
});
