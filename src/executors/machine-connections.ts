// SSH connections of one executor, opened per job or ahead of it. An idle-pool machine gets its connection
// when it joins the pool (warm), so the job that picks it up starts without the ~100 ms of SSH handshake,
// key exchange and authentication; the job takes the held connection and closes it when it ends, like one
// it opened itself. A held connection that drops tells the pool, which replaces the machine.

import { MachineInterruptedError, systemClock, type Clock, type ConnectionInfo, type JobRunContext, type Logger, type MachineWarmer } from '../core/index.js';
import { HEARTBEAT_INTERVAL_MS, parseInterruption, watchCommand } from './machine-watch.js';
import { connectSsh, type SshConnection } from './ssh-connection.js';
import { forgetJob } from './machine-jobs.js';
import type { SshExecutionOptions } from './ssh-execution-options.js';
import { REMOTE_SHELL_COMMAND } from './remote-shell.js';

const WARM_CONNECT_TIMEOUT_MS = 10_000;

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface Held {
  conn: SshConnection;
  unsubscribe: () => void;
  /** Stops the heartbeat loop. */
  heartbeat: AbortController;
}

/** One key per machine endpoint and host key: a new machine reusing an address never gets an old connection. */
function keyOf(m: ConnectionInfo): string {
  return `${m.username}@${m.host}:${m.port} ${m.hostPublicKey}`;
}

export class MachineConnections implements MachineWarmer {
  private readonly held = new Map<string, Held>();
  private readonly clock: Clock;

  constructor(private readonly o: SshExecutionOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** Connections held for idle machines right now. */
  get heldCount(): number {
    return this.held.size;
  }

  async warm(machine: ConnectionInfo, onLost: (reason: Error) => void, signal?: AbortSignal): Promise<void> {
    // The machine answered a moment ago (its readiness check, or its last job): no boot budget here, or a
    // machine that died in between would hold its place in the pool for minutes.
    const conn = await this.open(machine, this.o.logger, signal, Math.min(this.o.connectTimeoutMs, WARM_CONNECT_TIMEOUT_MS));
    try {
      // Asked now so the job does not have to: its stages' pid files live there. Bounded, so a machine
      // that answers keepalives but not commands cannot hold its place in the pool.
      await withTimeout(conn.remoteTmpDir(), WARM_CONNECT_TIMEOUT_MS, `the machine did not answer a command within ${WARM_CONNECT_TIMEOUT_MS} ms`);
    } catch (e) {
      conn.close();
      throw e;
    }
    // The first stage's shell and the control shell start now, not when the job comes: a job on a warm
    // machine then opens no channel before its first command runs (bench/pickup.mjs).
    conn.openAhead(REMOTE_SHELL_COMMAND);
    const key = keyOf(machine);
    this.drop(key);
    const unsubscribe = conn.onLost((e) => {
      if (this.held.get(key)?.conn !== conn) return;
      this.held.delete(key);
      onLost(e);
    });
    const heartbeat = new AbortController();
    this.held.set(key, { conn, unsubscribe, heartbeat });
    void this.beat(conn, machine.stateDir, heartbeat.signal, (e) => {
      // An idle machine with an interruption notice leaves the pool like a lost one: no job should get it.
      if (this.held.get(key)?.conn !== conn) return;
      this.drop(key);
      onLost(e);
    });
    // Lost in between (onLost ran before the entry existed): report it as a failed warm-up instead.
    if (conn.lost) {
      this.drop(key);
      throw conn.lost;
    }
  }

  cool(machine: ConnectionInfo): void {
    this.drop(keyOf(machine));
  }

  /** A new connection of its own, never the one held for the idle pool (housekeeping beside the pool: taking
   *  the held one would leave an idle machine nobody watches). */
  fresh(machine: ConnectionInfo, log: Logger, signal: AbortSignal): Promise<SshConnection> {
    return this.open(machine, log, signal);
  }

  /** The connection held for this machine (handed over: the caller closes it), or a new one. */
  async connect(machine: ConnectionInfo, log: Logger, signal: AbortSignal): Promise<SshConnection> {
    const key = keyOf(machine);
    const held = this.held.get(key);
    if (held) {
      this.held.delete(key);
      held.unsubscribe();
      held.heartbeat.abort();
      if (!held.conn.lost) return held.conn;
      held.conn.close();
    }
    return this.open(machine, log, signal);
  }

  /** Touches the machine's heartbeat now and every HEARTBEAT_INTERVAL_MS while the connection is held
   *  (the machine's watchdog powers off an instance no coordinator holds, templates/ec2-user-data.yaml), and
   *  reads its interruption notice in the same command. */
  private async beat(conn: SshConnection, stateDir: string, stop: AbortSignal, onInterrupted: (e: MachineInterruptedError) => void): Promise<void> {
    const cmd = watchCommand(stateDir);
    while (!stop.aborted && !conn.lost) {
      const out = await conn.control(cmd).catch((e: unknown) => {
        this.o.logger.debug({ err: String(e) }, 'idle heartbeat failed');
        return '';
      });
      const notice = parseInterruption(out);
      if (notice && !stop.aborted) return onInterrupted(new MachineInterruptedError(notice));
      try {
        await this.clock.sleep(HEARTBEAT_INTERVAL_MS, stop);
      } catch {
        return;
      }
    }
  }

  private open(machine: ConnectionInfo, log: Logger, signal?: AbortSignal, connectTimeoutMs = this.o.connectTimeoutMs): Promise<SshConnection> {
    return connectSsh(machine, {
      connectTimeoutMs,
      keepaliveIntervalMs: this.o.keepaliveIntervalMs ?? 5_000,
      keepaliveCountMax: this.o.keepaliveCountMax ?? 3,
      clock: this.clock,
      logger: log,
      ...(signal && { signal }),
    });
  }

  private drop(key: string): void {
    const held = this.held.get(key);
    if (!held) return;
    this.held.delete(key);
    held.unsubscribe();
    held.heartbeat.abort();
    held.conn.close();
  }
}

/** What every SSH-based execution style shares: its clock, its connections, and warming idle machines. */
export abstract class SshExecutorBase implements MachineWarmer {
  protected readonly clock: Clock;
  protected readonly connections: MachineConnections;
  private readonly logger: Logger;

  constructor(o: SshExecutionOptions) {
    this.clock = o.clock ?? systemClock;
    this.connections = new MachineConnections(o);
    this.logger = o.logger;
  }

  warm(machine: ConnectionInfo, onLost: (reason: Error) => void, signal?: AbortSignal): Promise<void> {
    return this.connections.warm(machine, onLost, signal);
  }

  cool(machine: ConnectionInfo): void {
    this.connections.cool(machine);
  }

  /** Removes a job's records once GitLab has its result (Reattacher.forget). */
  forget(machine: ConnectionInfo, jobId: number): Promise<void> {
    return forgetJob(machine, this.connections, this.logger, jobId);
  }

  /** A new connection after one dropped mid-job (bounded by the executor's connect timeout; given up on an
   *  abort or a handoff). */
  protected reconnect(machine: ConnectionInfo, log: Logger, ctx: JobRunContext): Promise<SshConnection> {
    const signals = [ctx.abort, ...(ctx.handoff ? [ctx.handoff.signal] : [])];
    return this.connections.connect(machine, log, AbortSignal.any(signals));
  }
}
