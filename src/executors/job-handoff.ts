// The executor's last act in a coordinator that hands its running jobs to a successor (onShutdown: handoff):
// once the trace GitLab has is flushed, the trace checkpoint goes to the job's records on the machine, so the
// successor regenerates the trace from there (trace-checkpoints.ts). Shared by the shell and docker styles.

import { errorMessage, type JobRunContext, type Logger } from '../core/index.js';
import { writeCheckpointCommand } from './job-records.js';
import type { SshConnection } from './ssh-connection.js';
import type { TraceWriter } from './trace-lines.js';

export async function recordHandoff(
  conn: SshConnection,
  jobDir: string,
  trace: TraceWriter,
  handoff: NonNullable<JobRunContext['handoff']>,
  log: Logger,
  /** Before any stage ran (a docker job's prepare): the whole confirmed trace is the point. */
  beforeStages = false,
): Promise<void> {
  try {
    await handoff.flushed();
    const c = beforeStages ? trace.checkpoints?.whole?.() : trace.checkpoints?.checkpoint();
    if (c && !conn.lost) await conn.output(writeCheckpointCommand(jobDir, c));
    log.info({ checkpoint: c }, 'job handed off: its stages go on, a successor follows them');
  } catch (e) {
    log.warn({ err: errorMessage(e) }, 'could not record the trace checkpoint at handoff; the successor regenerates from the last one');
  }
}
