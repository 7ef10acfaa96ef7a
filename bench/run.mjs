// npm run bench: runs every bench, prints each figure beside its floor (measured in the same run) and the
// ratio, and writes bench/results/latest.json ({name, value, unit, floor?, ratioToFloor?, goal?, what?}[]; the
// machine it ran on is printed, and kept beside the table in the README).
//   node bench/run.mjs [--only=name,name] [--vm] [--burst-floor]
// Each bench also runs alone: node bench/<name>.mjs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { benchTrace } from './trace.mjs';
import { benchPickup } from './pickup.mjs';
import { benchDispatch } from './dispatch.mjs';
import { benchBurst } from './burst.mjs';
import { benchTraceE2e } from './trace-e2e.mjs';
import { benchCost } from './cost.mjs';
import { runVmTest, vmFigures } from './vm.mjs';

const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const benches = [
  ['trace', 'trace pipeline in-process', benchTrace],
  ['trace-e2e', 'trace end to end', benchTraceE2e],
  ['burst', 'burst of 300 EC2 launches', () => benchBurst({ withFloor: process.argv.includes('--burst-floor') })],
  ['dispatch', 'dispatch', benchDispatch],
  ['pickup', 'job pickup', benchPickup],
  ['cost', 'cost per running job', benchCost],
];
const started = Date.now();
const results = [];
for (const [key, label, fn] of benches) {
  if (only && !only.includes(key)) continue;
  process.stderr.write(`bench: ${label}…\n`);
  const t0 = Date.now();
  results.push(...(await fn()));
  process.stderr.write(`bench: ${label} took ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
if (process.argv.includes('--vm')) {
  process.stderr.write('bench: the EC2 stand-in VM (test/e2e/dind-vm.e2e.test.ts)…\n');
  runVmTest();
}
const vm = vmFigures();

const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`;
const ratioOf = (r) => (typeof r.floor === 'number' && r.floor > 0 && r.unit !== 'ratio' ? r.value / r.floor : undefined);
console.log(`${'figure'.padEnd(46)} ${'value'.padStart(10)} ${'unit'.padEnd(14)} ${'floor'.padStart(10)} ${'ratio'.padStart(7)}  goal`);
for (const r of results) {
  const ratio = ratioOf(r);
  console.log(`${r.name.padEnd(46)} ${String(r.value).padStart(10)} ${r.unit.padEnd(14)} ${String(r.floor ?? '').padStart(10)} ${(ratio === undefined ? '' : ratio.toFixed(2)).padStart(7)}  ${r.goal ?? ''}${r.what ? `\n${' '.repeat(48)}${r.what}` : ''}`);
}
for (const r of vm.results) console.log(`${r.name.padEnd(46)} ${String(r.value).padStart(10)} ${r.unit}  ${r.what ?? ''}`);
console.log(vm.note);
console.log(`machine: ${machine}; all benches ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (!only) {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const out = [...results, ...vm.results].map((r) => {
    const ratio = ratioOf(r);
    return ratio === undefined ? r : { ...r, ratioToFloor: +ratio.toFixed(3) };
  });
  writeFileSync(new URL('./results/latest.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
  console.log('written: bench/results/latest.json');
}
