// The EC2 stand-in VM's figures: launch → SSH with the pinned key → cloud-init done → ready, pickup on the VM,
// and the privileged DinD job's steps. test/e2e/dind-vm.e2e.test.ts measures them on a real VM (QEMU,
// software emulation, so minutes per run) and writes bench/results/vm-dind.json; the bench prints the
// figures of that run with the time it was made rather than booting a VM itself. `npm run bench -- --vm`
// runs the VM test first (as root; the guest image is cached after its first build).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FILE = new URL('./results/vm-dind.json', import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export function runVmTest() {
  const r = spawnSync('npx', ['vitest', 'run', 'test/e2e/dind-vm.e2e.test.ts'], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, FLEETRUNNER_VM_TEST: '1' } });
  if (r.status !== 0) throw new Error(`bench: the VM test failed (exit ${r.status}); its output names the failing stage`);
}

/** `{ results, note }`: the last VM run's figures as bench results (names prefixed `vm_`), and where they come from. */
export function vmFigures() {
  if (!existsSync(FILE)) {
    return { results: [], note: 'no VM figures yet: run `npm run bench -- --vm` or `npx vitest run test/e2e/dind-vm.e2e.test.ts` as root' };
  }
  const doc = JSON.parse(readFileSync(FILE, 'utf8'));
  const image = doc.imageCached ? 'guest image from the cache' : 'guest image built in that run';
  return {
    results: doc.figures.map((f) => ({ name: `vm_${f.name}`, value: f.value, unit: f.unit })),
    note: `vm_* figures: the DinD VM test run of ${doc.measuredAt} (${doc.host.cpus} CPUs, ${doc.host.accel}; ${image})`,
  };
}
