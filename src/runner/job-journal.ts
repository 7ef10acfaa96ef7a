// Jobs in flight, on disk: if the coordinator dies (kill -9, OOM, a lost Fargate task), the next start
// finds them and reports them failed instead of leaving them "running" in GitLab until it times out.
// An entry holds the job token (needed to report), so the directory and files are owner-only, like the
// runner token file beside them. An entry gains the job's outcome once it is known and is removed only
// when GitLab has taken the final state: a restart in between resumes the delivery.

import type { JobOutcome } from '../core/outcome.js';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface JournalEntry {
  jobId: number;
  jobToken: string;
  /** GitLab this job came from (a coordinator pointed elsewhere leaves the entry alone). */
  gitlabUrl: string;
  /** The trace spool file of the job. */
  spoolPath: string;
  /** For the failure reasons GitLab accepts. */
  failureReasons?: string[];
  startedAt: number;
  /** Set once the job ended: the final state to deliver (a restart delivers this, not a failure). */
  outcome?: JobOutcome;
}

export class JobJournal {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  record(entry: JournalEntry): void {
    const file = this.file(entry.jobId, entry.gitlabUrl);
    writeFileSync(`${file}.tmp`, JSON.stringify(entry), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  remove(jobId: number, gitlabUrl: string): void {
    rmSync(this.file(jobId, gitlabUrl), { force: true });
  }

  /** Entries left by an earlier run for this GitLab. */
  leftovers(gitlabUrl: string): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const e = JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as JournalEntry;
        if (e.gitlabUrl === gitlabUrl && typeof e.jobId === 'number' && typeof e.jobToken === 'string') out.push(e);
      } catch {
        rmSync(join(this.dir, name), { force: true }); // half-written: nothing to recover
      }
    }
    return out;
  }

  private file(jobId: number, gitlabUrl: string): string {
    const host = gitlabUrl.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9.-]/g, '_');
    return join(this.dir, `${host}-${jobId}.json`);
  }
}
