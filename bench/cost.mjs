// Cost per running job: N jobs in flight at once (10, 100, 1000), each printing a line a second, over real
// SSH to one local sshd (machines are slices of it: bench/lib/shared-sshd.mjs). The coordinator runs alone
// in a process of its own; once every job is running, its CPU time (user + system) and resident memory are
// sampled over a window: CPU per job-second = CPU ms / (N × window s); memory per job = (RSS at N − RSS of
// the same coordinator idle before the jobs) / N, each sampled right after a full garbage collection (what
// the jobs retain, not garbage a collection that had not yet run would free). Floor in the same run: the same coordinator with no job
// (its idle CPU over the same window). BENCH_WINDOW_PROF=dir writes a CPU profile of each window there, BENCH_HEAP_SNAPSHOT=dir heap
// snapshots of the idle coordinator and after the window.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGitLab } from '../dist/fakegitlab/index.js';
import { startChild } from './lib/child.mjs';
import { killLeftovers, startSharedSshd } from './lib/shared-sshd.mjs';

const WINDOW_S = Number(process.env.BENCH_COST_WINDOW_S ?? 12);
const LEVELS = (process.env.BENCH_COST_LEVELS ?? '10,100,1000').split(',').map(Number);
/** The jobs' machines come up this far apart, as booting instances do, rather than all asking the one
 *  sshd for a handshake in the same second. A job's start costs this host's machine side about 0.4 s of
 *  CPU (its SSH handshake, sessions and shells: process starts are slow on this virtual machine), so at
 *  1,000 jobs they come 300 ms apart (what 2 CPUs can start while running the jobs already started). */
const readyEveryMs = (n) => Number(process.env.BENCH_COST_READY_EVERY_MS ?? (n >= 1000 ? 300 : 40));
/** Past this, the window is measured with the jobs running by then (the figure says how many). */
const rampS = (n) => Number(process.env.BENCH_COST_RAMP_S ?? Math.max(150, (n * readyEveryMs(n)) / 1000 + 90));

/** GitLab's X-GitLab-Trace-Update-Interval: 3 s while someone has the job's page open, 60 s otherwise
 *  (Gitlab::Ci::Trace UPDATE_FREQUENCY_WHEN_BEING_WATCHED / _DEFAULT). The levels assume every job watched;
 *  one more run at 100 measures the usual case. */
const WATCHED_S = 3;
const UNWATCHED_S = 60;
const UNWATCHED_AT = Number(process.env.BENCH_COST_UNWATCHED_AT ?? 100);

async function level(n, { traceIntervalS = WATCHED_S, execArgv = ['--expose-gc', ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [])] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fr-bench-cost-'));
  const sshd = await startSharedSshd(join(dir, 'sshd'), { maxStartups: 1000 });
  const fake = new FakeGitLab({ traceUpdateIntervalS: traceIntervalS, checkIntervalMs: 20 });
  await fake.start();
  let child;
  try {
    const runner = fake.addRunner();
    child = await startChild('./coordinator-child.mjs', {
      BENCH_COORDINATOR: JSON.stringify({ gitlabUrl: fake.url, token: runner.token, dir, concurrent: n, requestConcurrency: Math.min(n, 16), checkIntervalMs: 1000, connection: sshd.connection, readyEveryMs: readyEveryMs(n) }),
    }, { execArgv });
    await new Promise((r) => setTimeout(r, 1000));
    const idle0 = await child.stats(); // floor: the same coordinator with no job, asking GitLab every checkInterval (1 s)
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const idle1 = await child.stats();
    const idleMem = await child.stats({ gc: true });
    if (process.env.BENCH_HEAP_SNAPSHOT) await child.snapshot(join(process.env.BENCH_HEAP_SNAPSHOT, `cost-${n}-idle.heapsnapshot`));
    const project = await fake.createProject({ path: 'bench/cost', files: { 'README.md': 'bench\n' } });
    // Each job prints a line a second until its file `stop` exists (the bench ends them all at once).
    const stopFile = join(dir, 'stop');
    // Bounded (10 min) and tied to the bench's directory, so a bench that dies leaves nothing running.
    // The second's wait is bash's own (`read -t 1` on a pipe nobody writes to), not a `sleep` process: at
    // 1,000 jobs a process start per job-second would be more than this host's 2 CPUs can start, and
    // the machines' side is not what is measured.
    const script = [`exec 9<> <(:); i=0; while [ ! -e ${stopFile} ] && [ -d ${dir} ] && [ $i -lt 600 ]; do i=$((i+1)); echo "line $i of a job that prints once a second"; read -t 1 -u 9 || true; done`];
    const p = await fake.createPipeline(project, Array.from({ length: n }, (_, i) => ({ name: `cost-${i}`, git_strategy: 'none', script })));
    const t0 = Date.now();
    const deadline = t0 + rampS(n) * 1000;
    let shown = 0;
    // Running = its step_script printed its first line.
    const runningNow = () => fake.jobsOf(p).filter((j) => j.traceText.includes('line 1 of')).length;
    while (runningNow() < n) {
      if (Date.now() > deadline) break;
      // A job that could not start (at 1000, one sshd on 2 CPUs refuses handshakes it cannot serve within
      // the 2-minute connect timeout) is counted and left out; the window measures the jobs running.
      if (fake.jobsOf(p).filter((j) => j.state === 'failed').length + runningNow() >= n) break;
      await new Promise((r) => setTimeout(r, 500));
      const running = fake.jobsOf(p).filter((j) => j.traceText.includes('line 1 of')).length;
      if (process.env.BENCH_VERBOSE && running !== shown) process.stderr.write(`  ${running} running, ${fake.jobsOf(p).filter((j) => j.state === 'pending').length} pending, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`), (shown = running);
    }
    const rampTookS = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 3000)); // let start-up work settle
    const failedToStart = fake.jobsOf(p).filter((j) => j.state === 'failed');
    const nA = runningNow();
    if (process.env.BENCH_WINDOW_PROF) await child.profile({ on: true });
    const a = await child.stats();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const b = await child.stats();
    const mem = await child.stats({ gc: true }); // after the CPU window: a full collection, then what is retained
    if (process.env.BENCH_WINDOW_PROF) await child.profile({ off: true, file: join(process.env.BENCH_WINDOW_PROF, `cost-${n}.cpuprofile`) });
    if (process.env.BENCH_HEAP_SNAPSHOT) await child.snapshot(join(process.env.BENCH_HEAP_SNAPSHOT, `cost-${n}.heapsnapshot`));
    const nB = runningNow();
    const jobs = (nA + nB) / 2;
    const { writeFileSync } = await import('node:fs');
    writeFileSync(stopFile, '');
    const end = Date.now() + 120_000;
    while (fake.jobsOf(p).some((j) => j.state === 'pending' || j.state === 'running') && Date.now() < end) await new Promise((r) => setTimeout(r, 500));
    const notOk = fake.jobsOf(p).filter((j) => j.state !== 'success').length;
    if (process.env.BENCH_VERBOSE) {
      // Where the resident set's growth is: V8's spaces committed (and used) idle → busy, MiB.
      const mib = (x) => (x / 1048576).toFixed(1);
      const spaces = Object.keys(mem.spaces).map((k) => `${k} ${mib(idleMem.spaces[k]?.size ?? 0)}→${mib(mem.spaces[k].size)} (used ${mib(mem.spaces[k].used)})`);
      process.stderr.write(`  memory at ${n}: rss ${mib(idleMem.rssBytes)}→${mib(mem.rssBytes)}, heap committed ${mib(idleMem.heapTotalBytes)}→${mib(mem.heapTotalBytes)}, used ${mib(idleMem.heapBytes)}→${mib(mem.heapBytes)}; ${spaces.join('; ')}\n`);
    }
    const idleCpuMsPerS = (idle1.cpuUs - idle0.cpuUs) / 1000 / WINDOW_S;
    const cpuMsPerS = (b.cpuUs - a.cpuUs) / 1000 / WINDOW_S;
    return {
      n,
      rampS: rampTookS,
      running: [nA, nB],
      failedToStart: failedToStart.length,
      failure: failedToStart[0]?.traceText.match(/ERROR: [^\n]*/)?.[0],
      cpuMsPerJobS: cpuMsPerS / jobs,
      idleCpuMsPerS,
      rssKiBPerJob: (mem.rssBytes - idleMem.rssBytes) / 1024 / nB,
      heapKiBPerJob: (mem.heapBytes - idleMem.heapBytes) / 1024 / nB,
      externalKiBPerJob: (mem.externalBytes - idleMem.externalBytes) / 1024 / nB,
      rssMiB: mem.rssBytes / 1048576,
      notOk,
    };
  } finally {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'stop'), '');
    await child?.stop().catch(() => child.kill());
    await fake.stop();
    sshd.stop();
    await killLeftovers(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchCost() {
  const results = [];
  const runs = [...LEVELS.map((n) => ({ n, traceIntervalS: WATCHED_S })), ...(UNWATCHED_AT > 0 ? [{ n: UNWATCHED_AT, traceIntervalS: UNWATCHED_S }] : [])];
  for (const { n, traceIntervalS } of runs) {
    const unwatched = traceIntervalS === UNWATCHED_S;
    process.stderr.write(`bench: cost per running job at ${n}${unwatched ? ', nobody watching the jobs' : ''}…\n`);
    const r = await level(n, { traceIntervalS });
    if (r.notOk) process.stderr.write(`bench cost: ${r.notOk} of ${n} jobs did not succeed\n`);
    const all = r.running[0] === n && r.running[1] === n;
    const failed = r.failedToStart ? `; ${r.failedToStart} jobs could not start (${r.failure?.replace(/\x1b\[[0-9;]*m/g, '').slice(0, 160)})` : '';
    const watching = unwatched
      ? `GitLab's trace interval for a job nobody is watching (${traceIntervalS} s)`
      : `GitLab's trace interval while someone watches each job (${traceIntervalS} s)`;
    const what = `${all ? n : `${r.running.join('→')} of ${n} (the rest still starting after ${rampS(n)} s: their start-up is in the figure)`} jobs printing a line a second, ${watching}, ${WINDOW_S} s window; ramp ${r.rampS.toFixed(1)} s (machines ready ${readyEveryMs(n)} ms apart); coordinator RSS ${r.rssMiB.toFixed(0)} MiB${failed}`;
    if (unwatched) {
      results.push({ name: `coordinator_cpu_ms_per_job_s_at_${n}_unwatched`, value: +r.cpuMsPerJobS.toFixed(3), unit: 'core-ms/job-s', floor: +r.idleCpuMsPerS.toFixed(3), floorUnit: 'core-ms/s idle, no job', goal: '<= 0.25', what });
      continue;
    }
    results.push(
      { name: `coordinator_cpu_ms_per_job_s_at_${n}`, value: +r.cpuMsPerJobS.toFixed(3), unit: 'core-ms/job-s', floor: +r.idleCpuMsPerS.toFixed(3), floorUnit: 'core-ms/s idle, no job', goal: '<= 0.25', what },
      { name: `coordinator_rss_kib_per_job_at_${n}`, value: +r.rssKiBPerJob.toFixed(1), unit: 'KiB/job', goal: '<= 64', what: `RSS growth over the idle coordinator / jobs, both after a full GC; JS heap ${r.heapKiBPerJob.toFixed(1)} KiB/job, outside it (Buffers, native) ${r.externalKiBPerJob.toFixed(1)} KiB/job` },
    );
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await benchCost()) console.log(JSON.stringify(r));
}
