// A job channel for the job loop's unit tests: GitLab takes every job at once, and each job's final state
// and whole trace are kept for the test to read.
import type { JobOutcome } from '../../src/core/outcome.js';
import type { JobChannel, OpenJobChannel } from '../../src/runner/ports.js';

export function recordingChannels(): { openChannel: OpenJobChannel; finals: Map<number, JobOutcome>; traces: Map<number, string> } {
  const finals = new Map<number, JobOutcome>();
  const traces = new Map<number, string>();
  const openChannel: OpenJobChannel = (j, log): JobChannel => ({
    acknowledge: async () => 'ok',
    start: () => undefined,
    finish: async (outcome) => {
      finals.set(j.id, outcome);
      traces.set(j.id, Buffer.from(await log.read(0, log.size)).toString());
      return 'delivered';
    },
    abandon: () => undefined,
  });
  return { openChannel, finals, traces };
}
