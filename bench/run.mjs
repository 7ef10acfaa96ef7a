// npm run bench: prints each figure and writes bench/results/latest.json ({name, value, unit, what?}[]; the VM figures say what they measure).
import { mkdirSync, writeFileSync } from 'node:fs';
import { benchTrace } from './trace.mjs';
import { benchPickup } from './pickup.mjs';
import { runVmTest, vmFigures } from './vm.mjs';

const results = [];
for (const [label, fn] of [['trace pipeline', benchTrace], ['job pickup', benchPickup]]) {
  process.stderr.write(`bench: ${label}…\n`);
  results.push(...(await fn()));
}
if (process.argv.includes('--vm')) {
  process.stderr.write('bench: the EC2 stand-in VM (test/e2e/dind-vm.e2e.test.ts)…\n');
  runVmTest();
}
const vm = vmFigures();
results.push(...vm.results);
for (const r of results) console.log(`${r.name.padEnd(44)} ${String(r.value).padStart(12)} ${r.unit}${r.what ? `  ${r.what}` : ''}`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/latest.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
console.log(vm.note);
console.log('written: bench/results/latest.json');
