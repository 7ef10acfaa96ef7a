// The `file` form of a job's AWS credentials on its machine (core/aws-credentials.ts), in the job's records
// directory (stateDir/jobs/<id>/aws, mode 700; every file 600):
//   credentials.json  the session as `credential_process` prints it (Version 1, keys, Expiration), rewritten
//                     through a temporary file and a rename when the session is renewed
//   config            `[default] credential_process = cat …/credentials.json` (AWS_CONFIG_FILE)
//   credentials       the same profile (AWS_SHARED_CREDENTIALS_FILE): SDKs that read only this file (the
//                     JavaScript SDK v2, Go v1 without AWS_SDK_LOAD_CONFIG) find the process there, and a
//                     `~/.aws/credentials` baked into the job's image cannot come before it
// A directory, not a file, is what the docker style mounts into build containers: a bind-mounted file would
// keep showing the inode it had when the container started, not the renamed one.
// Scripts with a session in them reach the machine's bash on stdin (hostExec), never on a command line.

import type { AwsSession, JobPayload, JobVariable } from '../core/index.js';
import { writeFileLines } from './job-records.js';
import { shellQuote } from './remote-shell.js';

export interface AwsFiles {
  dir: string;
  session: string;
  config: string;
  credentials: string;
}

export function awsFilesOf(jobDir: string): AwsFiles {
  const dir = `${jobDir}/aws`;
  return { dir, session: `${dir}/credentials.json`, config: `${dir}/config`, credentials: `${dir}/credentials` };
}

/** What the job is told: where its AWS config is. No keys: the environment comes first in every SDK's chain. */
export function awsFileVariables(f: AwsFiles): JobVariable[] {
  return [
    { key: 'AWS_CONFIG_FILE', value: f.config, public: false },
    { key: 'AWS_SHARED_CREDENTIALS_FILE', value: f.credentials, public: false },
  ];
}

/** The job with those variables (once: a continued job's payload already has them). */
export function withAwsFileVariables(job: JobPayload, f: AwsFiles): JobPayload {
  const vars = awsFileVariables(f);
  const keys = new Set(vars.map((v) => v.key));
  return { ...job, variables: [...job.variables.filter((v) => !keys.has(v.key)), ...vars] };
}

/** credential_process's output (the AWS CLI's and SDKs' format, version 1). */
export function processOutput(s: AwsSession): string {
  return `${JSON.stringify({ Version: 1, AccessKeyId: s.accessKeyId, SecretAccessKey: s.secretAccessKey, SessionToken: s.sessionToken, Expiration: new Date(s.expiresAt).toISOString() })}\n`;
}

/** Reads credentials.json back (a continued job); undefined when it is not a session. */
export function parseProcessOutput(text: string): AwsSession | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const expiresAt = typeof v.Expiration === 'string' ? Date.parse(v.Expiration) : NaN;
    if (typeof v.AccessKeyId !== 'string' || typeof v.SecretAccessKey !== 'string' || typeof v.SessionToken !== 'string' || Number.isNaN(expiresAt)) return undefined;
    return { accessKeyId: v.AccessKeyId, secretAccessKey: v.SecretAccessKey, sessionToken: v.SessionToken, expiresAt };
  } catch {
    return undefined;
  }
}

/** The profile both files hold: the process prints the session file. */
export function profileText(f: AwsFiles): string {
  return `[default]\ncredential_process = cat ${shellQuote(f.session)}\n`;
}

const fileLines = writeFileLines;

/** Creates the directory and its three files (the job's first session). */
export function setupScript(f: AwsFiles, s: AwsSession): string {
  return [
    'umask 077',
    `mkdir -p ${shellQuote(f.dir)} && chmod 700 ${shellQuote(f.dir)} || exit 1`,
    ...fileLines(f.config, profileText(f)),
    ...fileLines(f.credentials, profileText(f)),
    ...fileLines(f.session, processOutput(s)),
  ].join('\n');
}

/** Replaces the session (a whole file or none for a reader: rename). */
export function renewScript(f: AwsFiles, s: AwsSession): string {
  return [`[ -d ${shellQuote(f.dir)} ] || exit 3`, 'umask 077', ...fileLines(f.session, processOutput(s))].join('\n');
}

/** Prints the session file, or nothing when the job has none (its credentials are variables). */
export function readCommand(f: AwsFiles): string {
  return `cat -- ${shellQuote(f.session)} 2>/dev/null; exit 0`;
}

/** At the job's end: nothing of the session stays on the machine. */
export function removeCommand(f: AwsFiles): string {
  return `rm -rf -- ${shellQuote(f.dir)}`;
}
