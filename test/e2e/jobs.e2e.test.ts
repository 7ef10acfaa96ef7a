// The built CLI with the contract config against the strict fake GitLab, real sshd, git, bash.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { testToken } from '../helpers/tokens.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
});

function expectClean(s: Stack, jobTokens: string[] = []) {
  expect(s.fake.violations).toEqual([]);
  const log = s.log();
  expect(log).not.toContain(s.token);
  for (const t of jobTokens) expect(log).not.toContain(t);
}

describe('e2e: jobs through the built CLI', () => {
  it('runs a job to success with its output, sections and final state', async () => {
    stack = await startStack();
    const p = await createSimplePipeline(stack.fake, [{ name: 'hello', script: ['echo "hello from $CI_JOB_NAME"', 'test -f README.md'] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!);
    expect(job.state).toBe('success');
    expect(job.exitCode).toBeUndefined();
    expect(job.traceText).toContain('$ echo "hello from $CI_JOB_NAME"');
    expect(job.traceText).toContain('hello from hello');
    expect(job.traceText).toMatch(/section_start:\d+:get_sources/);
    expect(job.traceText).toContain('Job succeeded');
    expect(await stack.stop()).toBe(0);
    expectClean(stack, [job.token]);
  });

  it('fails with script_failure and exit code 3, and after_script still runs', async () => {
    stack = await startStack();
    const p = await createSimplePipeline(stack.fake, [
      { name: 'fails', script: ['echo before', 'exit 3', 'echo never'], after_script: ['echo "after with $CI_JOB_STATUS"'] },
    ]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!);
    expect(job).toMatchObject({ state: 'failed', failureReason: 'script_failure', exitCode: 3 });
    expect(job.traceText).toContain('after with failed');
    expect(job.traceText).not.toContain('\nnever');
    expect(job.traceText).toContain('exit code 3');
    expect(await stack.stop()).toBe(0);
    expectClean(stack, [job.token]);
  });

  it('stops a job at its timeout as job_execution_timeout and kills the remote process', async () => {
    stack = await startStack();
    const marker = `fr_e2e_timeout_${process.pid}_${Date.now()}`;
    const p = await createSimplePipeline(stack.fake, [{ name: 'slow', timeout: 3, script: [`bash -c 'exec -a ${marker} sleep 60'`] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!);
    expect(job).toMatchObject({ state: 'failed', failureReason: 'job_execution_timeout' });
    expect(job.traceText).toContain('execution took longer than 3 seconds');
    expect(pgrep(marker)).toBe('');
    expect(await stack.stop()).toBe(0);
    expectClean(stack);
  });

  it('masks a masked variable even when the job prints it in pieces', async () => {
    stack = await startStack();
    const secret = `Sup3rSecret${Date.now()}xyz`;
    const pat = testToken('glpat-');
    const p = await createSimplePipeline(stack.fake, [
      {
        name: 'secret',
        variables: { MY_SECRET: { value: secret, masked: true } },
        script: ['printf "%s" "${MY_SECRET:0:6}"; sleep 0.5; printf "%s\\n" "${MY_SECRET:6}"', 'echo "whole: $MY_SECRET"', `echo "pat: ${pat}"`],
      },
    ]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!);
    expect(job.state).toBe('success');
    expect(job.traceText).not.toContain(secret);
    expect(job.traceText).toContain('whole: [MASKED]');
    expect(job.traceText).toContain('pat: glpat-[MASKED]');
    expect(job.traceText).not.toContain(pat.slice('glpat-'.length));
    expect(await stack.stop()).toBe(0);
    expectClean(stack, [job.token, secret]);
  });

  it('truncates 6 MiB of output at the 4 MiB limit with GitLab notice', async () => {
    stack = await startStack();
    const p = await createSimplePipeline(stack.fake, [{ name: 'loud', script: ["head -c 6291456 /dev/zero | tr '\\0' 'a' | fold -w 99"] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job.state).toBe('success');
    expect(job.trace.length).toBeLessThan(4 * 1024 * 1024 + 300);
    expect(job.trace.length).toBeGreaterThan(4 * 1024 * 1024);
    expect(job.traceText).toContain("Job's log exceeded limit of 4194304 bytes.");
    expect(await stack.stop()).toBe(0);
    expectClean(stack);
  });
});

describe('e2e: legacy registration token', () => {
  it('registers on start, runs a job, and deletes the runner on SIGTERM', async () => {
    stack = await startStack({ registration: true });
    const p = await createSimplePipeline(stack.fake, [{ name: 'legacy', script: ['echo legacy-ok'] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!);
    expect(job.state).toBe('success');
    expect(await stack.stop()).toBe(0);
    const calls = stack.fake.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(calls).toContain('POST /api/v4/runners 201');
    expect(calls).toContain('DELETE /api/v4/runners 204');
    expect(calls.some((c) => c.startsWith('POST /api/v4/runners/verify'))).toBe(false);
    expectClean(stack, [job.token]);
  });
});

function pgrep(pattern: string): string {
  try {
    return execFileSync('pgrep', ['-f', pattern]).toString().trim();
  } catch {
    return '';
  }
}
