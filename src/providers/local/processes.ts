// Host process inspection through /proc, used to tell whether a machine's sshd lives and to find every
// process that belongs to a machine when it is terminated.

import { readdir, readFile } from 'node:fs/promises';

import type { Clock } from '../../core/index.js';

interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
  /** Start time in clock ticks since boot: with the pid, identifies a process across pid reuse. */
  startTime: string;
}

async function readStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // "pid (comm) S ppid …": comm may itself contain spaces and parentheses.
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' ');
  const state = rest[0] ?? '?';
  const ppid = Number(rest[1]);
  return { pid, ppid: Number.isFinite(ppid) ? ppid : 0, state, startTime: rest[19] ?? '' };
}

/** Arguments of a live (non-zombie) process, or undefined when it is gone. */
export async function readCmdline(pid: number): Promise<string[] | undefined> {
  const stat = await readStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return undefined;
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s) => s.length > 0);
  } catch {
    return undefined;
  }
}

/** True when `pid` exists and is not a zombie. */
export async function processExists(pid: number): Promise<boolean> {
  const stat = await readStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** True when `pid` runs and its command line contains `marker` (guards against pid reuse). */
export async function isProcessAlive(pid: number, marker: string): Promise<boolean> {
  let args = await readCmdline(pid);
  // A process in the middle of execve shows an empty command line for a moment (kernel threads always do).
  if (args && args.length === 0) {
    await new Promise((r) => setTimeout(r, 20));
    args = await readCmdline(pid);
  }
  return args !== undefined && args.some((a) => a.includes(marker));
}

async function allPids(): Promise<number[]> {
  const entries = await readdir('/proc');
  const pids: number[] = [];
  for (const e of entries) {
    if (/^\d+$/.test(e)) pids.push(Number(e));
  }
  return pids;
}

/** Every live descendant of `root` (not `root` itself). */
export async function descendantsOf(root: number): Promise<number[]> {
  const stats = (await Promise.all((await allPids()).map(readStat))).filter(
    (s): s is ProcStat => s !== undefined && s.state !== 'Z',
  );
  const children = new Map<number, number[]>();
  for (const s of stats) {
    const list = children.get(s.ppid) ?? [];
    list.push(s.pid);
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Processes whose environment holds exactly `entry` ("KEY=value"). Sees other users' processes only as root. */
export async function pidsWithEnvEntry(entry: string): Promise<number[]> {
  const found: number[] = [];
  await Promise.all(
    (await allPids()).map(async (pid) => {
      try {
        const env = await readFile(`/proc/${pid}/environ`, 'latin1');
        if (env.split('\0').includes(entry)) found.push(pid);
      } catch {
        // gone, or not ours to read
      }
    }),
  );
  return found;
}

/** Live sshd listeners started with `-f <configFile>`. sshd rewrites its command line into one string
 *  ("sshd: /usr/sbin/sshd -D -e -f <file> [listener] …"), so both forms are matched. */
export async function sshdPidsWithConfig(configFile: string): Promise<number[]> {
  const flag = ` -f ${configFile}`;
  const found: number[] = [];
  await Promise.all(
    (await allPids()).map(async (pid) => {
      const args = await readCmdline(pid);
      if (args?.some((a) => a === configFile || a.includes(`${flag} `) || a.endsWith(flag))) found.push(pid);
    }),
  );
  return found;
}

/** Processes any of whose uids (real, effective, saved, filesystem) is `uid`: every process a user started,
 *  including setuid programs it ran. Sees other users' processes (all of /proc/<pid>/status is world-readable). */
export async function pidsOfUid(uid: number): Promise<number[]> {
  const found: number[] = [];
  await Promise.all(
    (await allPids()).map(async (pid) => {
      try {
        const status = await readFile(`/proc/${pid}/status`, 'latin1');
        const line = /^Uid:\s+(.*)$/m.exec(status)?.[1];
        if (line && line.split(/\s+/).map(Number).includes(uid)) found.push(pid);
      } catch {
        // gone
      }
    }),
  );
  return found;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // ESRCH: already gone
  }
}

/** SIGTERM, wait up to `graceMs` for them to go, then SIGKILL the rest. Never signals this process or pid 1,
 *  nor a process that took over a pid after ours died (checked by start time). */
export async function killProcesses(pids: Iterable<number>, graceMs: number, clock: Clock): Promise<void> {
  const targets = new Map<number, string>();
  for (const pid of new Set(pids)) {
    if (pid <= 1 || pid === process.pid) continue;
    const stat = await readStat(pid);
    if (stat && stat.state !== 'Z' && stat.state !== 'X') targets.set(pid, stat.startTime);
  }
  if (targets.size === 0) return;
  const stillOurs = async (pid: number) => {
    const stat = await readStat(pid);
    return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X' && stat.startTime === targets.get(pid);
  };
  for (const p of targets.keys()) signal(p, 'SIGTERM');
  const deadline = clock.now() + graceMs;
  let alive = [...targets.keys()];
  for (;;) {
    alive = (await Promise.all(alive.map(async (p) => ((await stillOurs(p)) ? p : 0)))).filter((p) => p > 0);
    if (alive.length === 0 || clock.now() >= deadline) break;
    await clock.sleep(50);
  }
  for (const p of alive) signal(p, 'SIGKILL');
}
