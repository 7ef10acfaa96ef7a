// After a crash or a stop that could not deliver everything: jobs the journal still lists are reported to
// GitLab, all at once and in the background, so taking new jobs never waits for them.
// - An entry with an outcome ended before the coordinator stopped: its real final state and spooled trace
//   are delivered (GitLab's 416 tells the trace session where its copy ends).
// - An entry without one was running when the coordinator died; its machine is gone (start-up garbage
//   collection removes it), so it is reported as a system failure with a line saying what happened.

import { existsSync } from 'node:fs';
import { errorMessage } from '../core/errors.js';
import { jobStub } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import { failed } from '../core/outcome.js';
import type { JobJournal, JournalEntry } from './job-journal.js';
import type { JobChannel, OpenJobChannel } from './ports.js';
import { FileTraceLog } from './trace/file-trace-log.js';

const INTERRUPTED =
  '\n\x1b[31;1mERROR: Job failed (system failure): the fleetrunner coordinator stopped unexpectedly while this job ran; its machine was removed when it restarted.\x1b[0;m\n';
const TRACE_LOST = '\n\x1b[33;1mWARNING: the job log kept by the previous fleetrunner coordinator was lost; what GitLab already has is kept.\x1b[0;m\n';

export interface Recovery {
  /** Entries found at start. */
  readonly count: number;
  /** Resolves when every entry was delivered or abandoned. */
  readonly done: Promise<void>;
  /** Stops deliveries still retrying (shutdown); their entries stay for the next start. */
  abandon(): void;
}

export function recoverInterruptedJobs(o: {
  journal: JobJournal;
  gitlabUrl: string;
  openChannel: OpenJobChannel;
  outputLimitBytes: number;
  spoolFallback: string;
  logger: Logger;
  /** Jobs continued from their machines (reattach.ts): theirs to report, not recovery's. */
  continued?: ReadonlySet<number>;
}): Recovery {
  const entries = o.journal.leftovers(o.gitlabUrl).filter((e) => !o.continued?.has(e.jobId));
  const channels = new Set<JobChannel>();
  let abandoned = false;
  const one = async (e: JournalEntry): Promise<void> => {
    const spooled = existsSync(e.spoolPath);
    const spoolPath = spooled ? e.spoolPath : `${o.spoolFallback}-${e.jobId}`;
    const log = spooled ? FileTraceLog.reopen(spoolPath, o.outputLimitBytes) : new FileTraceLog(spoolPath, o.outputLimitBytes);
    const outcome = e.outcome ?? failed('runner_system_failure', 'coordinator restarted');
    let delivered = false;
    try {
      if (!e.outcome) log.append(Buffer.from(INTERRUPTED));
      else if (!spooled) log.append(Buffer.from(TRACE_LOST));
      // Decided once: a crash during this delivery must not add the note again or change the outcome.
      if (!e.outcome || !spooled) o.journal.record({ ...e, outcome, spoolPath });
      const channel = o.openChannel(jobStub(e.jobId, e.jobToken, e.failureReasons), log);
      channels.add(channel);
      if (abandoned) channel.abandon();
      delivered = (await channel.finish(outcome)) === 'delivered';
      channels.delete(channel);
      const what = e.outcome ? 'delivered the final state of a job that ended before a restart' : 'reported a job interrupted by an earlier coordinator crash as failed';
      if (delivered) o.logger.warn({ job: e.jobId, outcome: outcome.state }, what);
    } catch (err) {
      o.logger.error({ job: e.jobId, err: errorMessage(err) }, 'could not report a job left by an earlier coordinator');
    } finally {
      if (delivered) {
        log.dispose();
        o.journal.remove(e.jobId, e.gitlabUrl);
      } else {
        log.close(); // the entry and its spool stay for the next start
      }
    }
  };
  const done = Promise.all(entries.map(one)).then(() => undefined);
  return {
    count: entries.length,
    done,
    abandon() {
      abandoned = true;
      for (const c of channels) c.abandon();
    },
  };
}
