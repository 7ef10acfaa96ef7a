// Dispatch: jobs handed out by the fake GitLab per second, through the real coordinator (its own process,
// requestConcurrency parallel job requests) to machines that are ready at once: slices of one local sshd
// (bench/lib/shared-sshd.mjs), so every job still runs for real over SSH (GIT_STRATEGY none, script `true`).
// Floor in the same run: the same number of parallel bare POST /jobs/request loops against the same fake
// (no coordinator behind them): what the fake itself can hand out.
// Checks: every job handed out once (the fake refuses a second handout of a job), every job succeeded.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGitLab } from '../dist/fakegitlab/index.js';
import { startChild } from './lib/child.mjs';
import { startSharedSshd } from './lib/shared-sshd.mjs';

const JOBS = Number(process.env.BENCH_DISPATCH_JOBS ?? 300);
const PARALLEL = Number(process.env.BENCH_DISPATCH_PARALLEL ?? 16);

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
      BENCH_COORDINATOR: JSON.stringify({ gitlabUrl: fake.url, token: runner.token, dir, concurrent: JOBS, requestConcurrency: PARALLEL, connection: sshd.connection }),
    });
    try {
      const project = await fake.createProject({ path: 'bench/dispatch', files: { 'README.md': 'bench\n' } });
      const p = await fake.createPipeline(project, Array.from({ length: JOBS }, (_, i) => ({ name: `dispatch-${i}`, git_strategy: 'none', script: ['true'] })));
      const deadline = Date.now() + 180_000;
      while (fake.jobsOf(p).some((j) => j.state === 'pending' || j.state === 'running')) {
        if (Date.now() > deadline) throw new Error('bench dispatch: jobs did not finish within 180 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      const jobs = fake.jobsOf(p);
      const failed = jobs.filter((j) => j.state !== 'success');
      if (failed.length) throw new Error(`bench dispatch: ${failed.length} jobs did not succeed, e.g. ${failed[0].traceText.slice(-400)}`);
      const violations = fake.takeViolations();
      if (violations.length) process.stderr.write(`bench dispatch: protocol violations: ${violations.length}: ${violations.slice(0, 3).join("; ")}\n`);
      const value = rate(jobs.map((j) => j.startedAt));
      const done = jobs.map((j) => j.finishedAt).sort((a, b) => a - b);
      return [
        { name: 'dispatch_jobs_per_s', value: +value.toFixed(1), unit: 'jobs/s', floor: +floorRate.toFixed(1), goal: '>= 100', what: `${JOBS} jobs, requestConcurrency ${PARALLEL}; floor: ${PARALLEL} bare request loops against the same fake` },
        { name: 'dispatch_all_finished_s', value: +((done.at(-1) - Math.min(...jobs.map((j) => j.startedAt))) / 1000).toFixed(2), unit: 's', what: `from the first handout until all ${JOBS} jobs had their final state` },
      ];
    } finally {
      await child.stop().catch(() => child.kill());
    }
  } finally {
    await fake.stop();
    sshd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await benchDispatch()) console.log(JSON.stringify(r));
}
