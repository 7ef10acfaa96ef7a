// EC2 instance states onto the fleet's closed set, in one exhaustive switch. A state EC2 adds later is
// mapped to 'unknown' and logged, never guessed.

import type { InstanceStateName } from '@aws-sdk/client-ec2';

import type { Logger } from '../../core/logger.js';
import type { MachineState } from '../../core/machine.js';

/** The states `list` asks EC2 for: everything not yet gone (shutting-down and terminated are gone for us). */
export const LISTED_STATES: readonly InstanceStateName[] = ['pending', 'running', 'stopping', 'stopped'];

export function toMachineState(ec2State: string | undefined, log?: Logger, instanceId?: string): MachineState {
  const s = ec2State as InstanceStateName | undefined;
  switch (s) {
    case 'pending':
      return 'pending';
    case 'running':
      return 'running';
    case 'stopping':
    case 'shutting-down':
      return 'stopping';
    // Nobody stops our instances on purpose (they terminate on shutdown from inside, and a stopped machine
    // has lost its job): a stopped instance is garbage, so it counts as on its way out and GC removes it.
    case 'stopped':
      return 'stopping';
    case 'terminated':
      return 'terminated';
    case undefined:
      break;
    default: {
      const never: never = s;
      void never;
    }
  }
  log?.warn({ instance: instanceId, ec2State }, 'unknown EC2 instance state: reported as unknown');
  return 'unknown';
}

/** An instance in one of these will never become ready. */
export function isGone(ec2State: string | undefined): boolean {
  return ec2State === 'shutting-down' || ec2State === 'terminated' || ec2State === 'stopping' || ec2State === 'stopped';
}
