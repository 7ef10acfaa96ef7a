export { ExecutorFleet, MachineUnavailableError, type AcquiredMachine, type ExecutorFleetOptions } from './executor-fleet.js';
export { SlotPool } from './slots.js';
