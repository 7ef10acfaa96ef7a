// Fargate task sizes: AWS accepts only certain (CPU, memory) pairs (Linux; CPU in units, 1024 = one vCPU):
//     256: 512, 1024, 2048          2048: 4096–16384 by 1024      8192: 16384–61440 by 4096
//     512: 1024–4096 by 1024        4096: 8192–30720 by 1024     16384: 32768–122880 by 8192
//    1024: 2048–8192 by 1024
// Pure, here in core/ so config/ (the default size) and providers/fargate (each job's) check the same table.
// A job's size is the executor's default unless it asks (FLEETRUNNER_CPU / FLEETRUNNER_MEMORY, parsed in
// jobs/task-size.ts); it must then be within the executor's bounds and one of these pairs. Anything else is
// refused with the reason and the valid memory sizes for the CPU asked, before any AWS call.

import type { FargateProviderConfig } from './provider-config.js';

const TABLE: readonly { cpu: number; memory: readonly number[] }[] = [
  { cpu: 256, memory: [512, 1024, 2048] },
  { cpu: 512, memory: range(1024, 4096, 1024) },
  { cpu: 1024, memory: range(2048, 8192, 1024) },
  { cpu: 2048, memory: range(4096, 16384, 1024) },
  { cpu: 4096, memory: range(8192, 30720, 1024) },
  { cpu: 8192, memory: range(16384, 61440, 4096) },
  { cpu: 16384, memory: range(32768, 122880, 8192) },
];

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let m = from; m <= to; m += step) out.push(m);
  return out;
}

export const FARGATE_CPU_UNITS: readonly number[] = TABLE.map((r) => r.cpu);

export function validMemoryFor(cpu: number): readonly number[] {
  return TABLE.find((r) => r.cpu === cpu)?.memory ?? [];
}

export function isValidFargateSize(cpu: number, memoryMiB: number): boolean {
  return validMemoryFor(cpu).includes(memoryMiB);
}

export interface TaskSize {
  cpu: number;
  memoryMiB: number;
}

export type SizeDecision = { ok: true; size: TaskSize } | { ok: false; reason: string };

function listed(ms: readonly number[]): string {
  return ms.length <= 4 ? ms.join(', ') : `${ms[0]}–${ms[ms.length - 1]} by ${ms[1]! - ms[0]!}`;
}

/** The task size for a job: what it asked, else the executor's default; checked against bounds and AWS's pairs.
 *  When only the CPU is asked, memory is the smallest valid for it (or the default, if valid and in bounds). */
export function decideTaskSize(asked: { cpuUnits?: number; memoryMiB?: number }, c: Pick<FargateProviderConfig, 'cpu' | 'memoryMiB'>): SizeDecision {
  const cpu = asked.cpuUnits ?? c.cpu.default;
  const fits = (m: number) => isValidFargateSize(cpu, m) && m >= c.memoryMiB.min && m <= c.memoryMiB.max;
  const memory = asked.memoryMiB ?? (fits(c.memoryMiB.default) ? c.memoryMiB.default : validMemoryFor(cpu).find(fits) ?? c.memoryMiB.default);
  if (!FARGATE_CPU_UNITS.includes(cpu)) return { ok: false, reason: `${cpu} CPU units is not a Fargate size (one of ${FARGATE_CPU_UNITS.join(', ')}; 1024 = one vCPU)` };
  if (cpu < c.cpu.min || cpu > c.cpu.max) return { ok: false, reason: `${cpu} CPU units is outside this executor's bounds (${c.cpu.min}–${c.cpu.max})` };
  if (memory < c.memoryMiB.min || memory > c.memoryMiB.max) return { ok: false, reason: `${memory} MiB of memory is outside this executor's bounds (${c.memoryMiB.min}–${c.memoryMiB.max} MiB)` };
  if (!isValidFargateSize(cpu, memory)) return { ok: false, reason: `Fargate has no task with ${cpu} CPU units and ${memory} MiB (with ${cpu} CPU units: ${listed(validMemoryFor(cpu))} MiB)` };
  return { ok: true, size: { cpu, memoryMiB: memory } };
}
