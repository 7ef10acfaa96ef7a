// Finding and stopping every process that belongs to a local machine, for terminate.
//
// Several nets, because job processes can leave their process group (setsid, double fork, nohup):
// 1. the sshd and its descendants (the listener, open sessions and what still hangs below them), the
//    listener found by its pid from the record or, record lost, by its config file's path;
// 2. the machine marker sshd puts into every session's environment (FLEETRUNNER_LOCAL_MACHINE=<id>),
//    read from /proc/<pid>/environ: inherited by daemons that re-parented to init;
// 3. in namespace mode, every pid inside the machine's network namespace;
// 4. with a job user of its own (coordinator running as root), every process of that uid, and then a
//    kill(-1) as that user, which also reaches what was forked during the sweep.
// Without a job user, only a process that both leaves the namespace and scrubs its environment escapes;
// with one, nothing the job started escapes (short of a setuid program that changes its real uid).

import type { Clock } from '../../core/index.js';
import { killAllOfUser, type JobUser } from './job-users.js';
import type { LocalMachineRecord, MachineDir } from './machine-dir.js';
import { namespacePids } from './netns.js';
import { descendantsOf, isProcessAlive, killProcesses, pidsOfUid, sshdPidsWithConfig, pidsWithEnvEntry } from './processes.js';
import { machineEnvEntry } from './sshd-config.js';

/** SIGTERM everything of the machine, SIGKILL what is left after `graceMs`, then sweep once more.
 *  `user` is the machine's job user as it exists now (looked up by name, never a remembered uid: a uid
 *  freed by a deleted user may already belong to another machine). */
export async function killMachineProcesses(
  dir: MachineDir,
  rec: LocalMachineRecord | undefined,
  graceMs: number,
  clock: Clock,
  user?: JobUser,
): Promise<void> {
  const pids: number[] = [];
  // The tree first: once the listener dies its children re-parent and can no longer be found by ppid.
  const listeners = rec?.pid !== undefined ? [rec.pid] : await sshdPidsWithConfig(dir.sshdConfig);
  for (const pid of listeners) {
    if (await isProcessAlive(pid, dir.sshdConfig)) pids.push(pid, ...(await descendantsOf(pid)));
  }
  const netns = rec?.netns;
  const owned = user !== undefined && user.uid > 0 ? user : undefined;
  const marked = async () => [
    ...(await pidsWithEnvEntry(machineEnvEntry(dir.id))),
    ...(netns ? await namespacePids(netns.name) : []),
    ...(owned ? await pidsOfUid(owned.uid) : []),
  ];
  pids.push(...(await marked()));
  await killProcesses(pids, graceMs, clock);
  if (owned) await killAllOfUser(owned);
  // Anything forked while the first round was dying.
  await killProcesses(await marked(), 0, clock);
}
