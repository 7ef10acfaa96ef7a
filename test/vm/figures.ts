// The VM run's figures: printed by the test and written to bench/results/vm-dind.json, where `npm run bench`
// picks them up (bench/vm.mjs) and prints them beside its own, with the time they were measured.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

export interface Figure {
  name: string;
  value: number;
  unit: 's' | 'ms' | 'MB' | 'bool';
  /** What it measures, in a few words. */
  what: string;
}

export const VM_FIGURES_FILE = join(import.meta.dirname, '..', '..', 'bench', 'results', 'vm-dind.json');

export class Figures {
  readonly list: Figure[] = [];

  add(name: string, value: number | undefined, unit: Figure['unit'], what: string): void {
    if (value === undefined || Number.isNaN(value)) return;
    this.list.push({ name, value: unit === 's' ? Math.round(value * 10) / 10 : Math.round(value), unit, what });
  }

  /** Seconds between two host-clock instants (ms), if both are known. */
  addSpan(name: string, from: number | undefined, to: number | undefined, what: string): void {
    if (from === undefined || to === undefined) return;
    this.add(name, (to - from) / 1000, 's', what);
  }

  table(): string {
    return this.list.map((f) => `  ${f.name.padEnd(34)} ${String(f.value).padStart(8)} ${f.unit.padEnd(4)} ${f.what}`).join('\n');
  }

  write(extra: Record<string, unknown> = {}): void {
    mkdirSync(join(VM_FIGURES_FILE, '..'), { recursive: true });
    const doc = {
      measuredAt: new Date().toISOString(),
      host: { cpus: cpus().length, accel: 'tcg (no KVM)' },
      ...extra,
      figures: this.list,
    };
    writeFileSync(VM_FIGURES_FILE, `${JSON.stringify(doc, null, 2)}\n`);
  }
}
