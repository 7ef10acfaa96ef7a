// Finding and stopping every process that belongs to a local machine, for terminate.
//
// Three nets, because job processes can leave their process group (setsid, double fork, nohup):
// 1. the sshd and its descendants (the listener, open sessions and what still hangs below them);
// 2. the machine marker sshd puts into every session's environment (FLEETRUNNER_LOCAL_MACHINE=<id>),
//    read from /proc/<pid>/environ: inherited by daemons that re-parented to init;
// 3. in namespace mode, every pid inside the machine's network namespace.
// Only a process that both leaves the namespace and scrubs its environment escapes.

import type { Clock } from '../../core/index.js';
import type { LocalMachineRecord, MachineDir } from './machine-dir.js';
import { namespacePids } from './netns.js';
import { descendantsOf, isProcessAlive, killProcesses, pidsWithEnvEntry } from './processes.js';
import { machineEnvEntry } from './sshd-config.js';

/** SIGTERM everything of the machine, SIGKILL what is left after `graceMs`, then sweep once more. */
export async function killMachineProcesses(
  dir: MachineDir,
  rec: LocalMachineRecord | undefined,
  graceMs: number,
  clock: Clock,
): Promise<void> {
  const pids: number[] = [];
  // The tree first: once the listener dies its children re-parent and can no longer be found by ppid.
  if (rec?.pid !== undefined && (await isProcessAlive(rec.pid, dir.sshdConfig))) {
    pids.push(rec.pid, ...(await descendantsOf(rec.pid)));
  }
  const netns = rec?.netns;
  const marked = async () => [
    ...(await pidsWithEnvEntry(machineEnvEntry(dir.id))),
    ...(netns ? await namespacePids(netns.name) : []),
  ];
  pids.push(...(await marked()));
  await killProcesses(pids, graceMs, clock);
  // Anything forked while the first round was dying.
  await killProcesses(await marked(), 0, clock);
}
