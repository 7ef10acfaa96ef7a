// Waiting for one launched instance to become usable, in two phases under one deadline: EC2 says `running`
// with an address (DescribeInstances, batched by the InstanceWatcher), then the readiness probe passes
// (default: SSH with the pinned host key + `docker info`). Failures say which phase and why; what to do
// with the machine afterwards is the provider's decision.

import type { Instance } from '@aws-sdk/client-ec2';

import type { Clock } from '../../core/clock.js';
import { errorMessage } from '../../core/errors.js';
import type { ConnectionInfo } from '../../core/machine.js';
import { isGone } from './instance-state.js';
import type { InstanceWatcher } from './instance-watcher.js';
import type { ReadinessProbe } from './ssh-probe.js';

/** The shortest readiness attempt worth making (TCP + SSH handshake + a command). */
const MIN_PROBE_MS = 1_000;

/** The probe kept failing until the deadline; `cause` is its last failure. */
export class ProbeTimeoutError extends Error {}

/** The instance went away while booting (spot capacity taken back, a bad KMS key on the volume, …). */
export class LostDuringBootError extends Error {
  constructor(readonly reasonCode: string, message: string) {
    super(message);
  }
}

export interface BootWaitOptions {
  watcher: InstanceWatcher;
  probe: ReadinessProbe;
  clock: Clock;
  /** Pause between probe attempts. */
  probeIntervalMs: number;
  /** The address to connect to (private or public IP), once EC2 shows one. */
  addressOf: (i: Instance) => string | undefined;
  /** Connection info for that address. */
  connectionTo: (host: string) => ConnectionInfo;
}

export async function waitForBoot(id: string, deadline: number, o: BootWaitOptions, signal?: AbortSignal): Promise<ConnectionInfo> {
  const inst = await o.watcher.waitFor(id, (i) => isGone(i.State?.Name) || (i.State?.Name === 'running' && !!o.addressOf(i)), deadline, signal);
  if (isGone(inst.State?.Name)) {
    const code = inst.StateReason?.Code ?? inst.StateTransitionReason ?? 'no reason given';
    const detail = inst.StateReason?.Message ? `: ${inst.StateReason.Message}` : '';
    throw new LostDuringBootError(code, `went ${inst.State?.Name} while booting (${code}${detail})`);
  }
  const connection = o.connectionTo(o.addressOf(inst)!);
  await probeUntilReady(connection, deadline, o, signal);
  return connection;
}

/** Probe attempts until one passes, each bounded by the time left (but given at least MIN_PROBE_MS). */
async function probeUntilReady(connection: ConnectionInfo, deadline: number, o: BootWaitOptions, signal?: AbortSignal): Promise<void> {
  let last: unknown;
  for (;;) {
    signal?.throwIfAborted();
    const left = deadline - o.clock.now();
    // A last-moment attempt could only time out, and would hide the reason the earlier ones failed.
    if (last !== undefined && left < MIN_PROBE_MS) throw new ProbeTimeoutError(`readiness check never passed, last: ${errorMessage(last)}`, { cause: last });
    const attempt = new AbortController();
    const onAbort = () => attempt.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await o.probe(connection, { signal: attempt.signal, timeoutMs: Math.max(MIN_PROBE_MS, left) });
      return;
    } catch (e) {
      last = e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    await o.clock.sleep(Math.max(0, Math.min(o.probeIntervalMs, deadline - o.clock.now())), signal);
  }
}
