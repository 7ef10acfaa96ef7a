// FLEETRUNNER_CPU / FLEETRUNNER_MEMORY: the size a job asks for its own machine (a Fargate task). Pure.
//   FLEETRUNNER_CPU     vCPUs ("0.25", "0.5", "1", "2", …) → CPU units (×1024)
//   FLEETRUNNER_MEMORY  MiB ("2048"), or with a unit: "512Mi", "2Gi", "2G", "512M" (binary units)
// Whether the size is one the cloud offers and within the executor's bounds is the provider's to say.

export type TaskSizeRequest = { ok: true; cpuUnits?: number; memoryMiB?: number } | { ok: false; reason: string };

const MEMORY = /^([0-9]+(?:\.[0-9]+)?)\s*(Mi|Gi|M|G|MiB|GiB)?$/;

export function taskSizeFromVariables(vars: ReadonlyArray<{ key: string; value: string }>): TaskSizeRequest {
  const get = (k: string) => vars.filter((v) => v.key === k).at(-1)?.value.trim();
  const cpu = get('FLEETRUNNER_CPU');
  const memory = get('FLEETRUNNER_MEMORY');
  const out: { ok: true; cpuUnits?: number; memoryMiB?: number } = { ok: true };
  if (cpu !== undefined && cpu !== '') {
    const n = Number(cpu);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(cpu) || !(n > 0)) return { ok: false, reason: `FLEETRUNNER_CPU must be a number of vCPUs such as 0.5, 1 or 2; got ${JSON.stringify(cpu.slice(0, 20))}` };
    const units = n * 1024;
    if (!Number.isInteger(units)) return { ok: false, reason: `FLEETRUNNER_CPU=${cpu} is not a whole number of CPU units (vCPUs × 1024)` };
    out.cpuUnits = units;
  }
  if (memory !== undefined && memory !== '') {
    const m = MEMORY.exec(memory);
    if (!m) return { ok: false, reason: `FLEETRUNNER_MEMORY must be MiB (2048) or a size such as 512Mi or 4Gi; got ${JSON.stringify(memory.slice(0, 20))}` };
    const mib = Number(m[1]) * (m[2]?.startsWith('G') ? 1024 : 1);
    if (!Number.isInteger(mib) || mib <= 0) return { ok: false, reason: `FLEETRUNNER_MEMORY=${memory} is not a whole number of MiB` };
    out.memoryMiB = mib;
  }
  return out;
}
