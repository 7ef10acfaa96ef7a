// The unprivileged users jobs run as when the coordinator runs as root: one system user per machine
// (`<prefix>-<10 hex>`, with its own group), created with the machine and deleted with it. A uid of its
// own per machine is what keeps concurrent jobs apart: with one shared user, a job could read, signal or
// ptrace another job. The hex is derived from the machine's directory, so terminate finds the user even
// when the machine's record is lost.
//
// Accounts are made by `useradd --system` (uids from the system range, which no rootless-container
// subordinate range overlaps) with the password field "*": no password login, but not "locked" ("!"),
// which sshd refuses with UsePAM no even for a key. No home is created (the machine's home dir is its
// home), no lastlog entry is written.

import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const DEFAULT_JOB_USER_PREFIX = 'fleetrunner-job';
/** Prefix + '-' + 10 hex stays within the 32 characters useradd allows. */
export const JOB_USER_PREFIX = /^[a-z_][a-z0-9_-]{0,19}$/;

export interface JobUser {
  name: string;
  uid: number;
  gid: number;
}

const COMMENT_PREFIX = 'fleetrunner local machine ';

/** The account's comment (GECOS) field: marks it as the user of the machine in `machinePath`, so that a
 *  user whose machine directory is gone can be recognised as left over (see sweepOrphans). */
export function jobUserComment(machinePath: string): string {
  return `${COMMENT_PREFIX}${machinePath}`;
}

/** Every account marked as a local machine's user, with the machine directory its comment names. */
export async function markedJobUsers(): Promise<Array<JobUser & { home: string; machinePath: string }>> {
  let out: string;
  try {
    out = await tool('getent', ['passwd']);
  } catch {
    return [];
  }
  const users: Array<JobUser & { home: string; machinePath: string }> = [];
  for (const line of out.split('\n')) {
    const f = line.split(':');
    const [name, , uid, gid, comment, home] = f;
    if (f.length < 7 || !name || !comment?.startsWith(COMMENT_PREFIX)) continue;
    const machinePath = comment.slice(COMMENT_PREFIX.length);
    if (Number(uid) > 0 && machinePath.startsWith('/')) users.push({ name, uid: Number(uid), gid: Number(gid), home: home ?? '', machinePath });
  }
  return users;
}

/** Whether per-machine users are possible at all: only root can create users and start sshd for them. */
export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The user name of the machine in directory `machinePath`. */
export function jobUserName(prefix: string, machinePath: string): string {
  if (!JOB_USER_PREFIX.test(prefix)) throw new Error(`invalid job user prefix ${JSON.stringify(prefix)}: expected ${JOB_USER_PREFIX}`);
  return `${prefix}-${createHash('sha256').update(machinePath).digest('hex').slice(0, 10)}`;
}

// useradd and userdel lock /etc/passwd (and wait for each other across processes); within this process
// they are queued so that create(n) does not have n of them contend for the lock.
let queue: Promise<unknown> = Promise.resolve();
function serialised<T>(fn: () => Promise<T>): Promise<T> {
  const next = queue.then(fn, fn);
  queue = next.catch(() => undefined);
  return next;
}

async function tool(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout: 60_000 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string; code?: unknown };
    const wrapped = new Error(`${cmd} ${args.join(' ')}: ${(err.stderr || err.message).trim()}`, { cause: e });
    (wrapped as Error & { exitCode?: unknown }).exitCode = err.code;
    throw wrapped;
  }
}

/** The account's uid, gid and comment, or undefined when there is no such user. */
export async function lookupUser(name: string): Promise<(JobUser & { comment: string }) | undefined> {
  let line: string;
  try {
    line = (await tool('getent', ['passwd', name])).trim();
  } catch {
    return undefined; // exit 2: no such user
  }
  const f = line.split(':');
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (f[0] !== name || !Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { name, uid, gid, comment: f[4] ?? '' };
}

async function groupExists(name: string): Promise<boolean> {
  try {
    await tool('getent', ['group', name]);
    return true;
  } catch {
    return false;
  }
}

export interface CreateJobUser {
  name: string;
  home: string;
  /** jobUserComment(machine dir); no ':' (passwd's separator). */
  comment: string;
  /** Add the user to the `docker` group (when the host has one). */
  docker: boolean;
}

/** Creates the account. Fails when the name is taken: a machine never adopts an existing user. */
export async function createJobUser(o: CreateJobUser): Promise<JobUser & { docker: boolean }> {
  const docker = o.docker && (await groupExists('docker'));
  await serialised(() =>
    tool('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--no-log-init',
      '--home-dir', o.home,
      '--shell', '/bin/bash',
      '--password', '*',
      '--comment', o.comment,
      ...(docker ? ['--groups', 'docker'] : []),
      o.name,
    ]),
  );
  const user = await lookupUser(o.name);
  if (!user || user.uid <= 0) throw new Error(`useradd ${o.name} succeeded but the user cannot be found`);
  return { name: user.name, uid: user.uid, gid: user.gid, docker };
}

/** Sends SIGKILL to every process of `user` at once: kill(-1) as that user, which also reaches processes
 *  forked while a pid-by-pid sweep runs (a process with a pending SIGKILL cannot fork). */
export function killAllOfUser(user: JobUser): Promise<void> {
  if (!(user.uid > 0)) return Promise.reject(new Error(`refusing to kill every process of uid ${user.uid}`));
  return new Promise((resolve) => {
    // The shell's builtin kill: it is the calling process itself that must hold the user's uid (kill(-1)
    // spares the caller). `--`: without it, dash reads -1 as an option and kills nothing.
    const child = spawn('/bin/sh', ['-c', 'kill -s KILL -- -1 2>/dev/null; exit 0'], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
    child.once('error', () => resolve());
    child.once('exit', () => resolve());
  });
}

/** World-writable places a job can write to outside its machine directory. */
const SHARED_TEMP_DIRS = ['/tmp', '/var/tmp', '/dev/shm'];

/**
 * Removes what the user left in the host's shared temp directories, so that the next machine whose user
 * gets the same uid (system uids are reused) does not own it. Only directories the user could enter
 * (others may search them) are descended into. Run after every process of the user is dead.
 */
export async function removeFilesOfUser(user: JobUser): Promise<void> {
  if (!(user.uid > 0)) throw new Error(`refusing to remove the files of uid ${user.uid}`);
  const uid = String(user.uid);
  const args = [...SHARED_TEMP_DIRS, '-xdev', '-mindepth', '1', '(', '-uid', uid, '-prune', '-exec', 'rm', '-rf', '--', '{}', '+', ')',
    '-o', '(', '-type', 'd', '!', '-perm', '-o=x', '-prune', ')'];
  await run('find', args, { timeout: 60_000 }).catch(() => undefined); // a missing dir or a vanished file: best effort
}

/** Deletes the account and its crontab. A user that does not exist is not an error. */
export async function deleteJobUser(name: string): Promise<void> {
  try {
    await serialised(() => tool('userdel', ['--force', name]));
  } catch (e) {
    // 6: the user does not exist.
    if ((e as { exitCode?: unknown }).exitCode !== 6) throw e;
  }
  await rm(`/var/spool/cron/crontabs/${name}`, { force: true });
}
