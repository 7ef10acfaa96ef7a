// The EC2 stand-in VM test's place in `npm test` and the build figures it reports (test/vm/figures.ts).
import { describe, expect, it } from 'vitest';

import config from '../../../vitest.config.js';
import { Figures } from '../../vm/figures.js';
import type { GuestImage } from '../../vm/guest-image.js';

const VM_TEST = 'test/e2e/dind-vm.e2e.test.ts';

describe('npm test (vitest.config.ts)', () => {
  const projects = (config.test?.projects ?? []) as Array<{ test: { name: string; include?: string[]; exclude?: string[]; sequence?: { groupOrder?: number } } }>;
  const byName = (name: string) => projects.find((p) => p.test.name === name)?.test;

  it('runs the VM test in a project of its own, after the rest of the suite', () => {
    const suite = byName('suite');
    const vm = byName('vm');
    expect(suite?.exclude).toContain(VM_TEST);
    expect(vm?.include).toEqual([VM_TEST]);
    expect(vm?.sequence?.groupOrder ?? 0).toBeGreaterThan(suite?.sequence?.groupOrder ?? 0);
  });
});

function image(o: { cached: boolean; steps?: Array<{ atS: number; what: string }> }): GuestImage {
  const manifest = { key: 'k', builtAt: '2026-12-06T20:41:13.693Z', buildMs: 177_164, diskBytesAllocated: 1, ...(o.steps && { steps: o.steps }) };
  return { dir: '/d', key: 'k', kernel: '', initrd: '', disk: '', cached: o.cached, buildMs: o.cached ? 0 : manifest.buildMs, manifest };
}

describe('Figures.addImageBuild', () => {
  it('reports the build from nothing and each step of build.sh, from its progress lines', () => {
    const f = new Figures();
    f.addImageBuild(
      image({
        cached: false,
        steps: [
          { atS: 0, what: 'mmdebstrap bookworm from http://deb.debian.org/debian' },
          { atS: 121, what: 'rootfs done (612M)' },
          { atS: 133, what: 'dind image tar 98M' },
          { atS: 141, what: "dind image imported into the guest's Docker store" },
          { atS: 170, what: 'disk.raw 960M allocated; done' },
        ],
      }),
    );
    expect(f.list.map((x) => [x.name, x.value])).toEqual([
      ['image_build_s', 177.2],
      ['image_build_rootfs_s', 121],
      ['image_build_dind_tar_s', 12],
      ['image_build_dind_import_s', 8],
      ['image_build_disk_s', 29],
    ]);
    expect(f.list[0]!.what).toContain('in this run');
  });

  it('reports a cached image by when it was built; an image without recorded steps gives its total only', () => {
    const f = new Figures();
    f.addImageBuild(image({ cached: true }));
    expect(f.list.map((x) => x.name)).toEqual(['image_build_s']);
    expect(f.list[0]!.what).toContain('cached image, built 2026-12-06T20:41:13.693Z');
  });
});
