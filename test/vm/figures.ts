// The VM run's figures: printed by the test and written to bench/results/vm-dind.json, where `npm run bench`
// picks them up (bench/vm.mjs) and prints them beside its own, with the time they were measured.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';

import type { GuestImage } from './guest-image.js';

export interface Figure {
  name: string;
  value: number;
  unit: 's' | 'ms' | 'MB' | 'bool';
  /** What it measures, in a few words. */
  what: string;
}

/** build.sh's progress lines (by how they start) → the figure for the step that ends there. */
const BUILD_STEPS: Array<[prefix: string, name: string, what: string]> = [
  ['rootfs done', 'image_build_rootfs_s', 'mmdebstrap: Debian packages fetched from the mirror and installed'],
  ['dind image tar', 'image_build_dind_tar_s', "the DinD image's root filesystem, from the guest's packages"],
  ['dind image imported', 'image_build_dind_import_s', "DinD image imported into the guest's Docker store"],
  ['disk.raw', 'image_build_disk_s', 'kernel, initrd and the ext4 disk (mkfs.ext4 -d)'],
];

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

  /** The guest image's build from nothing and its steps: measured in this run, or when the cached image was built. */
  addImageBuild(image: GuestImage): void {
    const when = image.cached ? `cached image, built ${image.manifest.builtAt}` : 'in this run';
    this.add('image_build_s', image.manifest.buildMs / 1000, 's', `guest image build from nothing (${when})`);
    let previous = 0;
    for (const step of image.manifest.steps ?? []) {
      const known = BUILD_STEPS.find(([prefix]) => step.what.startsWith(prefix));
      if (known) this.add(known[1], step.atS - previous, 's', known[2]);
      previous = step.atS;
    }
  }

  table(): string {
    return this.list.map((f) => `  ${f.name.padEnd(34)} ${String(f.value).padStart(8)} ${f.unit.padEnd(4)} ${f.what}`).join('\n');
  }

  write(extra: Record<string, unknown> = {}): void {
    mkdirSync(join(VM_FIGURES_FILE, '..'), { recursive: true });
    const doc = {
      measuredAt: new Date().toISOString(),
      // The load says whether the VM had the machine to itself (as in CI's VM phase) or shared it.
      host: { cpus: cpus().length, accel: 'tcg (no KVM)', loadAvg1m5m15m: loadavg().map((l) => Math.round(l * 10) / 10) },
      ...extra,
      figures: this.list,
    };
    writeFileSync(VM_FIGURES_FILE, `${JSON.stringify(doc, null, 2)}\n`);
  }
}
