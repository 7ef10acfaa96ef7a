// A job a previous coordinator started and a successor continues from its machine (reattach.ts): what the
// successor knows of it, and where its trace starts again.

import type { Executor, MachineJobRecord, Reattacher } from '../core/executor.js';
import type { ConnectionInfo, Machine } from '../core/machine.js';
import type { TraceCheckpoint } from '../core/trace.js';

export interface ContinuedJob {
  machine: Machine;
  connection: ConnectionInfo;
  record: MachineJobRecord;
  reattacher: Reattacher;
}

/** An executor whose jobs outlive the connection and can be read back by a successor. */
export function canReattach(e: Executor | undefined): e is Executor & Reattacher {
  const r = e as Partial<Reattacher> | undefined;
  return typeof r?.reattach === 'function' && typeof r.inspect === 'function' && typeof r.forget === 'function';
}

/** Where a continued job's trace starts: its checkpoint, or, before the first one was written, the head
 *  the first coordinator recorded (its own lines, stored as they were) followed by stage 1 from its start.
 *  A stage-0 checkpoint with bytes (CheckpointedTrace.whole: taken before any stage) is appended after. */
export function startingPoint(record: MachineJobRecord): { checkpoint: TraceCheckpoint; prefill?: Uint8Array } {
  if (record.checkpoint.stage > 0 || !record.head) return { checkpoint: record.checkpoint };
  return { checkpoint: { stage: 1, offset: 0, bytes: 0, crc: 0 }, prefill: record.head };
}

export { appendsAfter } from '../core/trace.js';
