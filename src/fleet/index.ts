export {
  ExecutorFleet,
  MachineUnavailableError,
  type AcquiredMachine,
  type AcquireOptions,
  type ExecutorFleetOptions,
  type FleetCounts,
  type ReleaseOptions,
  type RemovalReason,
} from './executor-fleet.js';
export { MachineTransitionError, REMOVAL_REASONS, type MachinePhase } from './machine-phases.js';
export { SlotPool } from './slots.js';
