// What a successor coordinator reads back from a machine: the job records under its state directory
// (job-records.ts), and where the job's session stands.

import { errorMessage, type ConnectionInfo, type Logger, type MachineJobRecord, type MachineJobs } from '../core/index.js';
import { forgetCommand, inspectCommand, jobDirOf, parseInspect, parseSession, stageFiles } from './job-records.js';
import type { SessionResume } from './detached-transport.js';
import type { MachineConnections } from './machine-connections.js';
import { shellQuote } from './remote-shell.js';
import type { SshConnection } from './ssh-connection.js';

const INSPECT_TIMEOUT_MS = 15_000;
/** A machine that does not answer is asked again (a successor starting beside many running jobs may find
 *  them slow): only records that cannot be read, or a machine silent every time, make it 'unreadable'. */
const INSPECT_ATTEMPTS = 3;

/** One connection, one command (again when the machine does not answer); never throws. */
export async function inspectMachine(machine: ConnectionInfo, connections: MachineConnections, logger: Logger): Promise<MachineJobs> {
  let last = '';
  for (let attempt = 1; attempt <= INSPECT_ATTEMPTS; attempt++) {
    const r = await inspectOnce(machine, connections, logger);
    if (r.kind !== 'no_answer') return r;
    last = r.reason;
    logger.warn({ machine: `${machine.host}:${machine.port}`, attempt, err: r.reason }, 'machine did not answer while its records were read');
  }
  return { kind: 'unreadable', reason: `no answer in ${INSPECT_ATTEMPTS} tries: ${last}` };
}

async function inspectOnce(machine: ConnectionInfo, connections: MachineConnections, logger: Logger): Promise<MachineJobs | { kind: 'no_answer'; reason: string }> {
  const stop = AbortSignal.timeout(INSPECT_TIMEOUT_MS);
  let conn: SshConnection | undefined;
  let out: string;
  try {
    conn = await connections.connect(machine, logger, stop);
    out = await Promise.race([
      conn.output(inspectCommand(machine.stateDir)),
      new Promise<never>((_, reject) => stop.addEventListener('abort', () => reject(new Error(`no answer within ${INSPECT_TIMEOUT_MS} ms`)), { once: true })),
    ]);
  } catch (e) {
    return { kind: 'no_answer', reason: errorMessage(e) };
  } finally {
    conn?.close();
  }
  return parseInspect(out);
}

/** session.json and whether the stage it names got as far as its output file. */
export async function readResume(conn: SshConnection, jobDir: string, record: MachineJobRecord): Promise<SessionResume> {
  const session = shellQuote(`${jobDir}/session.json`);
  const out = await conn.output(`cat ${session} 2>/dev/null; printf '\\n'`);
  const current = parseSession(out);
  let currentStarted = false;
  if (current) {
    const f = stageFiles(jobDir, current.seq);
    currentStarted = (await conn.output(`[ -e ${shellQuote(f.out)} ] && echo started || echo not-started`)).trim() === 'started';
  }
  return { current, currentStarted, checkpoint: record.checkpoint };
}

/** Removes a job's records from its machine once GitLab has its result (one connection, one command). */
export async function forgetJob(machine: ConnectionInfo, connections: MachineConnections, logger: Logger, jobId: number): Promise<void> {
  const conn = await connections.connect(machine, logger, AbortSignal.timeout(INSPECT_TIMEOUT_MS));
  try {
    await conn.output(forgetCommand(jobDirOf(machine.stateDir, jobId)));
  } finally {
    conn.close();
  }
}
