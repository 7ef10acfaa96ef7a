// The EC2 stand-in VM's figures: the guest image build from nothing and its steps, launch → SSH with the
// pinned key → cloud-init done → ready, pickup on the VM, and the privileged DinD job's steps.
// test/e2e/dind-vm.e2e.test.ts measures them on a real VM (QEMU, software emulation, so minutes per run) and
// writes bench/results/vm-dind.json; the bench prints the figures of that run with the time it was made
// rather than booting a VM itself. `npm run bench -- --vm` runs the VM test first (as root; the guest image
// is cached after its first build). `node bench/vm.mjs` prints the last run's figures alone.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FILE = new URL('./results/vm-dind.json', import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export function runVmTest() {
  const started = Date.now();
  const r = spawnSync('npx', ['vitest', 'run', 'test/e2e/dind-vm.e2e.test.ts'], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, FLEETRUNNER_VM_TEST: '1' } });
  if (r.status !== 0) throw new Error(`bench: the VM test failed (exit ${r.status}); its output names the failing stage`);
  const measured = existsSync(FILE) ? Date.parse(JSON.parse(readFileSync(FILE, 'utf8')).measuredAt) : 0;
  if (measured < started) throw new Error('bench: the VM test wrote no new figures');
}

/** `{ results, note }`: the last VM run's figures as bench results (names prefixed `vm_`, each with what it measures), and where they come from. */
export function vmFigures() {
  if (!existsSync(FILE)) {
    return { results: [], note: 'no VM figures yet: run `npm run bench -- --vm`, or `FLEETRUNNER_VM_TEST=1 npx vitest run test/e2e/dind-vm.e2e.test.ts`, as root' };
  }
  const doc = JSON.parse(readFileSync(FILE, 'utf8'));
  const image = doc.imageCached ? `guest image from the cache, built ${doc.imageBuiltAt ?? 'earlier'}` : 'guest image built in that run';
  return {
    results: doc.figures.map((f) => ({ name: `vm_${f.name}`, value: f.value, unit: f.unit, what: f.what })),
    note: `vm_* figures: the DinD VM test run of ${doc.measuredAt} (${doc.host.cpus} CPUs, ${doc.host.accel}${load(doc.host)}; ${image})`,
  };
}

/** The host's load average at the end of the run: alone (about 1-2 on 2 cores) or beside other work. */
function load(host) {
  return host.loadAvg1m5m15m ? `, load average ${host.loadAvg1m5m15m.join(' ')} at the end` : '';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const vm = vmFigures();
  for (const r of vm.results) console.log(`${r.name.padEnd(44)} ${String(r.value).padStart(12)} ${r.unit.padEnd(4)} ${r.what}`);
  console.log(vm.note);
}
