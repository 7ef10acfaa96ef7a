// Dispatch: jobs handed out by the fake GitLab per second, through the real coordinator (its own process,
// requestConcurrency parallel job requests) to machines that are ready at once: the executor's idle pool
// (pool.idleCount = the number of jobs), filled before the jobs are queued, so every machine is up, its SSH
// connection held and its first stage shell started, as a warm pool has them. The machines are slices of one
// local sshd (bench/lib/shared-sshd.mjs), so every job still runs for real over SSH (GIT_STRATEGY none,
// script `true`). BENCH_DISPATCH_COLD=1 gives each job a new machine instead (a connection per job).
// Floor in the same run: the same number of parallel bare POST /jobs/request loops against the same fake
// (no coordinator behind them): what the fake itself can hand out.
// Checks: every job handed out once (the fake refuses a second handout of a job), every job succeeded.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGitLab } from '../dist/fakegitlab/index.js';
import { startChild } from './lib/child.mjs';
import { killLeftovers, startSharedSshd } from './lib/shared-sshd.mjs';

const JOBS = Number(process.env.BENCH_DISPATCH_JOBS ?? 200);
const PARALLEL = Number(process.env.BENCH_DISPATCH_PARALLEL ?? 16);
const COLD = process.env.BENCH_DISPATCH_COLD === '1';
/** The machines' CPU while the jobs are handed out (bench/lib/shared-sshd.mjs): on EC2 it is not the coordinator's. */
const MACHINES_CPU = Number(process.env.BENCH_MACHINES_CPU ?? 0.5);

function rate(times) {
  const t = times.slice().sort((a, b) => a - b);
  return (t.length - 1) / ((t[t.length - 1] - t[0]) / 1000);
}

async function floor(fake, runner, jobs) {
  const project = await fake.createProject({ path: 'bench/floor', files: { 'README.md': 'bench\n' } });
  const p = await fake.createPipeline(project, Array.from({ length: jobs }, (_, i) => ({ name: `floor-${i}`, git_strategy: 'none', script: ['true'] })));
  const features = Object.fromEntries(['cancelable', 'cancel_gracefully', 'trace_checksum', 'trace_size', 'trace_reset', 'variables', 'raw_variables', 'artifacts', 'multi_build_steps', 'return_exit_code', 'upload_raw_artifacts', 'session', 'terminal', 'refspecs', 'masking', 'proxy', 'shared', 'upload_multiple_artifacts', 'artifacts_exclude', 'vault_secrets', 'image', 'services'].map((f) => [f, true]));
  const times = [];
  let left = jobs;
  let lastUpdate; // one per runner, as gitlab-runner keeps it
  const loop = async () => {
    while (left > 0) {
      const r = await fetch(`${fake.url}/api/v4/jobs/request`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: runner.token, system_id: 's_benchfloor0001', info: { name: 'floor', features }, ...(lastUpdate && { last_update: lastUpdate }) }),
      });
      lastUpdate = r.headers.get('x-gitlab-last-update') ?? lastUpdate;
      if (r.status === 201) {
        await r.arrayBuffer();
        left--;
        times.push(Date.now());
      } else {
        await r.arrayBuffer();
        if (fake.jobsOf(p).every((j) => j.state !== 'pending')) break;
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, loop));
  for (const j of fake.jobsOf(p)) if (j.state === 'running') fake.dropJob(j.id);
  return rate(times);
}

export async function benchDispatch() {
  const dir = mkdtempSync(join(tmpdir(), 'fr-bench-dispatch-'));
  const sshd = await startSharedSshd(join(dir, 'sshd'));
  const fake = new FakeGitLab({ traceUpdateIntervalS: 3, checkIntervalMs: 20 });
  await fake.start();
  try {
    const runner = fake.addRunner();
    const floorRate = await floor(fake, fake.addRunner(), JOBS);
    const child = await startChild('./coordinator-child.mjs', {
      BENCH_COORDINATOR: JSON.stringify({ gitlabUrl: fake.url, token: runner.token, dir, concurrent: JOBS, requestConcurrency: PARALLEL, connection: sshd.connection, ...(!COLD && { idle: JOBS, readyEveryMs: 30 }), ...(process.env.BENCH_LOG && { logLevel: process.env.BENCH_LOG }) }),
    }, { execArgv: process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [] });
    try {
      if (!COLD) {
        const poolDeadline = Date.now() + 120_000;
        while ((await child.machines()).bench?.idle !== JOBS) {
          if (Date.now() > poolDeadline) throw new Error(`bench dispatch: the idle pool did not fill: ${JSON.stringify(await child.machines())}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        await new Promise((r) => setTimeout(r, 2000)); // the pool's own start-up work settles
      }
      const machinesCpu = sshd.limitCpu(MACHINES_CPU);
      const project = await fake.createProject({ path: 'bench/dispatch', files: { 'README.md': 'bench\n' } });
      const p = await fake.createPipeline(project, Array.from({ length: JOBS }, (_, i) => ({ name: `dispatch-${i}`, git_strategy: 'none', script: ['true'] })));
      // Handed out = no longer pending. The jobs then run (and end) on the machines; the figure is the
      // handouts, and how many jobs had finished 120 s after the last one says nothing was lost.
      const handoutDeadline = Date.now() + 180_000;
      while (fake.jobsOf(p).some((j) => j.state === 'pending')) {
        if (Date.now() > handoutDeadline) throw new Error('bench dispatch: jobs still pending after 180 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      const value = rate(fake.jobsOf(p).map((j) => j.startedAt));
      if (process.env.BENCH_VERBOSE) {
        const ts = fake.jobsOf(p).map((j) => j.startedAt).sort((a, b) => a - b);
        const perS = new Map();
        for (const t of ts) perS.set(Math.floor((t - ts[0]) / 1000), (perS.get(Math.floor((t - ts[0]) / 1000)) ?? 0) + 1);
        process.stderr.write(`bench dispatch: handouts per second from the first: ${[...perS].map(([s, n]) => `${s}:${n}`).join(' ')}\n`);
      }
      // The jobs then run to their ends with the machines' CPU no longer limited.
      sshd.limitCpu(undefined);
      const finishDeadline = Date.now() + 120_000;
      while (fake.jobsOf(p).some((j) => j.state === 'running') && Date.now() < finishDeadline) await new Promise((r) => setTimeout(r, 250));
      const jobs = fake.jobsOf(p);
      const failed = jobs.filter((j) => j.state !== 'success' && j.state !== 'running');
      if (failed.length) throw new Error(`bench dispatch: ${failed.length} jobs failed, e.g. ${failed[0].traceText.slice(-400)}`);
      const finished = jobs.filter((j) => j.state === 'success').length;
      const violations = fake.takeViolations().filter((v) => !/check 14/.test(v)); // keep-alives of jobs slowed by the load are not the point here
      return [
        { name: 'dispatch_jobs_per_s', value: +value.toFixed(1), unit: 'jobs/s', floor: +floorRate.toFixed(1), goal: '>= 100', what: `${JOBS} jobs handed out to ${COLD ? 'a new machine each' : `an idle pool of ${JOBS} warm machines`}, requestConcurrency ${PARALLEL}, each job then run over SSH (${machinesCpu}); ${finished} of ${JOBS} succeeded within 120 s of the last handout (the machines' limit lifted then), none failed${violations.length ? `; protocol findings: ${violations.length}, e.g. ${violations[0]}` : ''}; floor: ${PARALLEL} bare request loops against the same fake` },
      ];
    } finally {
      // No drain: jobs still running are the machines' to end.
      if (process.env.BENCH_PROF) await child.exit();
      else child.kill();
    }
  } finally {
    await fake.stop();
    sshd.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await killLeftovers(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await benchDispatch()) console.log(JSON.stringify(r));
}
