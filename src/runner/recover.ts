// After a crash: jobs the journal still lists were running when the coordinator died. Their machines are
// gone (start-up garbage collection removes them), so report each as a system failure, with its spooled
// trace plus a line saying what happened. GitLab's 416 tells the trace session where its copy ends.

import { existsSync, rmSync } from 'node:fs';
import { errorMessage } from '../core/errors.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import { failed } from '../core/outcome.js';
import type { JobJournal } from './job-journal.js';
import type { OpenJobChannel } from './ports.js';
import { FileTraceLog } from './trace/file-trace-log.js';

const NOTE =
  '\n\x1b[31;1mERROR: Job failed (system failure): the fleetrunner coordinator stopped unexpectedly while this job ran; its machine was removed when it restarted.\x1b[0;m\n';

export async function recoverInterruptedJobs(o: {
  journal: JobJournal;
  gitlabUrl: string;
  openChannel: OpenJobChannel;
  outputLimitBytes: number;
  spoolFallback: string;
  logger: Logger;
}): Promise<number> {
  const entries = o.journal.leftovers(o.gitlabUrl);
  for (const e of entries) {
    const log = existsSync(e.spoolPath) ? FileTraceLog.reopen(e.spoolPath, o.outputLimitBytes) : new FileTraceLog(`${o.spoolFallback}-${e.jobId}`, o.outputLimitBytes);
    try {
      log.append(Buffer.from(NOTE));
      const job = { id: e.jobId, token: e.jobToken, variables: [], features: { failure_reasons: e.failureReasons ?? [] } } as unknown as JobPayload;
      await o.openChannel(job, log).finish(failed('runner_system_failure', 'coordinator restarted'));
      o.logger.warn({ job: e.jobId }, 'reported a job interrupted by an earlier coordinator crash as failed');
    } catch (err) {
      o.logger.error({ job: e.jobId, err: errorMessage(err) }, 'could not report an interrupted job');
    } finally {
      log.dispose();
      rmSync(e.spoolPath, { force: true });
      o.journal.remove(e.jobId, e.gitlabUrl);
    }
  }
  return entries.length;
}
