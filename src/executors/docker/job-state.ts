// The docker style's part of a job's records on its machine (job.json's `state`, job-records.ts): before
// prepare, the job's private directory only (a successor that finds the job unprepared removes what prepare
// made and prepares again); from the first stage on, its containers' prefix and files, and the registry
// passwords the trace masks (the machine has them anyway, in that directory's Docker configs).

import { posix } from 'node:path';

import type { DockerJobState } from './docker-job.js';

export interface DockerRecord {
  runDir: string;
  prepared: boolean;
  job?: DockerJobState;
  /** Registry passwords of the job's Docker configs: masked in the trace. */
  secrets?: string[];
}

/** job.json's state for the docker style. */
export function dockerState(r: DockerRecord): { docker: DockerRecord } {
  return { docker: r };
}

/** Reads job.json's state back; undefined when it is not a docker record (the job cannot be continued). */
export function readDockerState(state: unknown): DockerRecord | undefined {
  const d = (state as { docker?: Partial<DockerRecord> } | undefined)?.docker;
  if (!d || typeof d.runDir !== 'string' || !posix.isAbsolute(d.runDir) || typeof d.prepared !== 'boolean') return undefined;
  if (!d.prepared) return { runDir: d.runDir, prepared: false };
  const j = d.job;
  if (!j || typeof j.prefix !== 'string' || !/^fr-\d+-[0-9a-f]+$/.test(j.prefix)) return undefined;
  const secrets = Array.isArray(d.secrets) ? d.secrets.filter((x): x is string => typeof x === 'string') : [];
  return {
    runDir: d.runDir,
    prepared: true,
    job: {
      prefix: j.prefix,
      ...(typeof j.owner === 'string' && { owner: j.owner }),
      ...(typeof j.pushConfigFile === 'string' && { pushConfigFile: j.pushConfigFile }),
    },
    secrets,
  };
}
