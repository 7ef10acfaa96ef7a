import { describe, expect, it } from 'vitest';

import { failed, success } from '../../../src/core/index.js';
import { abortOutcome, JobAbortReason } from '../../../src/executors/job-abort.js';
import { ANSI, TraceWriter } from '../../../src/executors/trace-lines.js';
import { FakeClock, MemoryTrace } from './fakes.js';

function writer() {
  const sink = new MemoryTrace();
  return { sink, w: new TraceWriter(sink, new FakeClock(1_700_000_000_999)) };
}

describe('trace lines', () => {
  it('ends a successful job with "Job succeeded" in bold green', () => {
    const { sink, w } = writer();
    w.outcome(success);
    expect(sink.text).toBe(`${ANSI.clearLine}\x1b[32;1mJob succeeded\x1b[0;m\n`);
  });

  it('ends a failed job with a bold red ERROR line in gitlab-runner wording', () => {
    const { sink, w } = writer();
    w.outcome(failed('script_failure', 'exit code 3', 3));
    w.outcome(failed('runner_system_failure', 'lost SSH connection'));
    expect(sink.text).toBe(
      '\x1b[31;1mERROR: Job failed: exit code 3\x1b[0;m\n\x1b[31;1mERROR: Job failed (system failure): lost SSH connection\x1b[0;m\n',
    );
  });

  it('writes GitLab sections with unix-second timestamps', () => {
    const { sink, w } = writer();
    w.sectionStart('prepare_executor', 'Preparing the "shell" executor');
    w.sectionEnd('prepare_executor');
    expect(sink.text).toBe(
      '\x1b[0Ksection_start:1700000000:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1mPreparing the "shell" executor\x1b[0;m\n' +
        '\x1b[0Ksection_end:1700000000:prepare_executor\r\x1b[0K',
    );
  });

  it('starts its own lines on a new line after output without a trailing newline', () => {
    const { sink, w } = writer();
    w.write(Buffer.from('no newline'));
    w.sectionEnd('x');
    expect(sink.text.startsWith('no newline\n\x1b[0Ksection_end:')).toBe(true);
  });
});

describe('abort outcome', () => {
  it('is job_canceled unless the abort reason names another failure reason', () => {
    expect(abortOutcome(undefined)).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(abortOutcome(new DOMException('aborted', 'AbortError'))).toMatchObject({ reason: 'job_canceled' });
    expect(abortOutcome(new JobAbortReason('runner_system_failure', 'shutdown'))).toEqual({
      state: 'failed',
      reason: 'runner_system_failure',
      message: 'shutdown',
    });
  });
});
