// A job's records on its machine (ConnectionInfo.stateDir/jobs/<job id>/), which is what lets a successor
// coordinator pick the job up after the one that started it is gone:
//   job.json      the payload, when the job started and the trace's head (mode 600: the job token and
//                 variables are what the job already has on this machine; the runner token is never here)
//   session.json  one line appended as each stage starts: the stage's number and name, and how every
//                 earlier stage ended (job-session.ts's RecordedEnd); the last whole line is the one that
//                 counts (a file written by an older version holds a single record)
//   <n>.sh        stage n's script; <n>.out its output; <n>.exit its exit status (written by the launcher,
//                 outside the stage's process group); <n>.pid its process group; <n>.wpid the launcher
//   trace.ckpt    the trace checkpoints (where GitLab's copy of the trace can be regenerated from), one
//                 JSON line appended per checkpoint; the last whole line is the one that counts
// A record is written before what it describes starts, with the shell's own redirection: no `mv` process
// (a fork and an exec, 7-9 ms on the bench's machine) on a stage's start. session.json and the trace
// checkpoint, written again and again, are appended: a line cut short by a crash leaves the one before it
// whole, and a reader takes the last line that parses. job.json, written once before the first stage, is
// written in place: cut short, it does not parse, and the machine is then unreadable (removed), as one
// whose job had not started. Nobody reads a record while it is written: only the coordinator holding the
// lease starts stages, and a successor reads the machine only after it has taken the lease.

import type { JobPayload, MachineJobRecord, MachineJobs, TraceCheckpoint } from '../core/index.js';
import type { RecordedEnd } from './job-session.js';
import { shellQuote } from './remote-shell.js';

export interface JobFile {
  job: JobPayload;
  startedAt: number;
  /** The trace before the first stage, base64 (the runner's own lines). */
  head?: string;
  /** What the executor style needs to continue the job (the docker style: its containers' names, its
   *  private directory), opaque here. */
  state?: unknown;
}

export interface SessionFile {
  seq: number;
  name: string;
  ends: RecordedEnd[];
  /** When the user stages began (the script timeout of a continued session counts from there). */
  scriptStartedAt?: number;
}

/** The job's directory on the machine. */
export function jobDirOf(stateDir: string, jobId: number): string {
  return `${stateDir.replace(/\/+$/, '')}/jobs/${jobId}`;
}

export interface StageFiles {
  dir: string;
  seq: number;
  script: string;
  out: string;
  exit: string;
  pid: string;
}

export function stageFiles(jobDir: string, seq: number): StageFiles {
  return { dir: jobDir, seq, script: `${jobDir}/${seq}.sh`, out: `${jobDir}/${seq}.out`, exit: `${jobDir}/${seq}.exit`, pid: `${jobDir}/${seq}.pid` };
}

/** Shell lines writing `body` to `path` (atomically: through a temporary file and a rename), with bash
 *  builtins only but the rename. Reaches the machine on stdin, never on a command line: printf is a
 *  builtin. The body is one quoted word, parsed where it stands: a heredoc read back with `read` would be
 *  read one byte at a time (~1 ms per KiB on the bench's machine). */
export function writeFileLines(path: string, body: string, atomic = true): string[] {
  const p = shellQuote(path);
  const tmp = shellQuote(`${path}.tmp`);
  const text = shellQuote(body);
  return [atomic ? `printf '%s' ${text} > ${tmp} && mv -f ${tmp} ${p} || exit 1` : `printf '%s' ${text} > ${p} || exit 1`];
}

/** Shell lines removing every other job's directory beside this one (left by a job whose records were
 *  never removed: GitLab has its result, or it is not this machine's any more). */
export function otherJobsRemovedLines(jobDir: string): string[] {
  const d = shellQuote(jobDir);
  const parent = shellQuote(jobDir.slice(0, jobDir.lastIndexOf('/')));
  return [`for x in ${parent}/*; do [ "$x" = ${d} ] || rm -rf -- "$x"; done`];
}

/** Shell lines (for a script read on stdin) that create the job's directory, remove every other job's,
 *  and write job.json. */
export function jobRecordLines(jobDir: string, jobJson: string): string[] {
  const d = shellQuote(jobDir);
  return ['umask 077', `[ -d ${d} ] || mkdir -p ${d} || exit 1`, ...otherJobsRemovedLines(jobDir), ...writeFileLines(`${jobDir}/job.json`, jobJson)];
}

/** A command that records the trace checkpoint: one line appended to trace.ckpt (small, no secret: it may
 *  go on a command line). Builtins only, and no `exit`: it runs in a control shell itself. */
export function writeCheckpointCommand(jobDir: string, c: TraceCheckpoint): string {
  const f = shellQuote(`${jobDir}/trace.ckpt`);
  return `if [ -d ${shellQuote(jobDir)} ]; then printf '%s\\n' ${shellQuote(JSON.stringify(c))} >> ${f}; fi`;
}

/** At the session's end: session.json names a stage past the last one and holds how every stage ended, so
 *  until GitLab has the result (JobRun then has the records removed) a successor replays the stages' output
 *  and delivers the same result (small, no secret: it may go on a command line). */
export function writeEndRecordCommand(jobDir: string, ends: readonly RecordedEnd[]): string {
  const session: SessionFile = { seq: ends.length + 1, name: ENDED, ends: [...ends] };
  return `[ -d ${shellQuote(jobDir)} ] || exit 0; ${appendSessionLine(jobDir, JSON.stringify(session))}`;
}

/** Appends one session record to session.json. It starts on a line of its own: a file written by an older
 *  version ends without a newline. */
export function appendSessionLine(jobDir: string, sessionJson: string): string {
  return `printf '\\n%s\\n' ${shellQuote(sessionJson)} >> ${shellQuote(`${jobDir}/session.json`)}`;
}

/** The name of the stage an end record points at (none: the session is over). */
export const ENDED = '(ended)';

/** Removes a job's records (GitLab has its result). */
export function forgetCommand(jobDir: string): string {
  return `rm -rf ${shellQuote(jobDir)}`;
}

/** Prints every job directory's records, one `==name` line before each file's single-line content. */
export function inspectCommand(stateDir: string): string {
  const jobs = shellQuote(`${stateDir.replace(/\/+$/, '')}/jobs`);
  return [
    `[ -d ${jobs} ] || exit 0`,
    `cd ${jobs} || exit 1`,
    `for d in *; do [ -d "$d" ] || continue; printf '==job %s\\n' "$d"`,
    `  for f in job.json session.json; do printf '==%s\\n' "$f"; cat "$d/$f" 2>/dev/null; printf '\\n'; done`,
    // The last two checkpoints: if a crash cut the last one short, the one before it is whole.
    `  printf '==trace.ckpt\\n'; tail -n 2 "$d/trace.ckpt" 2>/dev/null; printf '\\n'`,
    `done`,
  ].join('\n');
}

const NO_CHECKPOINT: TraceCheckpoint = { stage: 0, offset: 0, bytes: 0, crc: 0 };

function isCheckpoint(c: unknown): c is TraceCheckpoint {
  const o = c as Partial<TraceCheckpoint> | null;
  return !!o && [o.stage, o.offset, o.bytes, o.crc].every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0);
}

/** The last line that is a whole checkpoint (one cut short by a crash is passed over); none: from the start. */
function lastCheckpoint(lines: readonly string[]): TraceCheckpoint {
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const c: unknown = JSON.parse(lines[i]!);
      if (isCheckpoint(c)) return c;
    } catch {
      // cut short: the one before it
    }
  }
  return NO_CHECKPOINT;
}

/** Reads inspectCommand's output. A machine with more than one job record, or an unreadable one, is
 *  'unreadable': it is removed rather than guessed about. */
export function parseInspect(out: string): MachineJobs {
  const jobs: Array<Record<string, string>> = [];
  const checkpointLines = new Map<Record<string, string>, string[]>();
  let current: Record<string, string> | undefined;
  let file: string | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('==job ')) {
      current = { id: line.slice(6) };
      jobs.push(current);
      file = undefined;
    } else if (line.startsWith('==') && current) {
      file = line.slice(2);
    } else if (current && file === 'trace.ckpt') {
      if (line !== '') checkpointLines.set(current, [...(checkpointLines.get(current) ?? []), line]);
    } else if (current && file && line !== '') {
      current[file] = (current[file] ?? '') + line;
    }
  }
  if (jobs.length === 0) return { kind: 'idle' };
  if (jobs.length > 1) return { kind: 'unreadable', reason: `records of ${jobs.length} jobs (${jobs.map((j) => j.id).join(', ')})` };
  const j = jobs[0]!;
  try {
    if (!j['job.json']) return { kind: 'unreadable', reason: `job ${j.id}: no job.json` };
    const jf = JSON.parse(j['job.json']) as JobFile;
    if (typeof jf.job?.id !== 'number' || typeof jf.job.token !== 'string' || typeof jf.startedAt !== 'number') {
      return { kind: 'unreadable', reason: `job ${j.id}: job.json is not a job record` };
    }
    const record: MachineJobRecord = {
      job: jf.job,
      startedAt: jf.startedAt,
      checkpoint: lastCheckpoint(checkpointLines.get(j) ?? []),
      ...(typeof jf.head === 'string' && { head: Buffer.from(jf.head, 'base64') }),
      ...(jf.state !== undefined && { state: jf.state }),
    };
    return { kind: 'job', record };
  } catch (e) {
    return { kind: 'unreadable', reason: `job ${j.id}: ${(e as Error).message}` };
  }
}

/** session.json of the job, as read by the reattaching executor: its last line that parses (one cut short by
 *  a crash is passed over); undefined: no stage started yet. Throws when no line is a session record. */
export function parseSession(text: string): SessionFile | undefined {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return undefined;
  let problem = 'session.json is not a session record';
  for (let i = lines.length - 1; i >= 0; i--) {
    let s: SessionFile;
    try {
      s = JSON.parse(lines[i]!) as SessionFile;
    } catch {
      continue; // cut short: the one before it
    }
    if (typeof s?.seq !== 'number' || typeof s.name !== 'string' || !Array.isArray(s.ends)) continue;
    if (s.scriptStartedAt !== undefined && !Number.isSafeInteger(s.scriptStartedAt)) {
      problem = 'session.json: scriptStartedAt is not a time';
      continue;
    }
    return s;
  }
  throw new Error(problem);
}

/** The job is over (not handed off, machine reachable): with how its stages ended, its end record stays until
 *  GitLab has the result; without (the session did not end normally), its records go at once. */
export async function recordEnd(
  conn: { output(command: string): Promise<string> },
  jobDir: string,
  ends: readonly RecordedEnd[] | undefined,
  ctx: { markUnclean?: (why: string) => void },
): Promise<void> {
  const command = ends ? writeEndRecordCommand(jobDir, ends) : forgetCommand(jobDir);
  await conn.output(command).catch((e: unknown) => ctx.markUnclean?.(`could not update the job's records in ${jobDir}: ${e instanceof Error ? e.message : String(e)}`));
}
