// Job pickup latency: from the fake GitLab handing a job out (its 201) to the job's first user command
// running on the machine (GIT_STRATEGY none, script `date +%s%3N`). The real coordinator, GitLab client,
// SSH executor and job scripts; machines from the local provider.
//   - ready machine: the executor's idle pool (pool.idleCount: 1) has a machine up, its SSH connection
//     held, before the job is handed out ("a machine already up"); the bench waits for the pool to refill
//     between jobs
//   - baseline in the same run: no pool, a fresh local machine per job
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../dist/config/index.js';
import { startCoordinator } from '../dist/cli/run.js';
import { FakeGitLab } from '../dist/fakegitlab/index.js';
import { silentLogger } from '../dist/core/logger.js';

async function poolReady(handle) {
  const deadline = Date.now() + 30_000;
  while (handle.machines().bench?.idle !== 1 || handle.machines().bench?.busy !== 0) {
    if (Date.now() > deadline) throw new Error(`bench: the idle pool did not refill: ${JSON.stringify(handle.machines())}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(jobs, { warm }) {
  const dir = mkdtempSync(join(tmpdir(), 'fr-bench-pickup-'));
  const fake = new FakeGitLab({ traceUpdateIntervalS: 3 });
  await fake.start();
  const runner = fake.addRunner();
  const config = {
    ...compileConfig({
      gitlab: { url: fake.url, token: runner.token }, concurrent: 1, checkInterval: '1s', stateDir: join(dir, 'state'),
      log: { level: 'error' },
      executors: [{ name: 'bench', provider: 'local', maxMachines: 2, local: { root: join(dir, 'machines') }, ...(warm && { pool: { idleCount: 1 } }) }],
    }),
    // Faster polling than a config file may ask for (checkInterval ≥ 1s): the bench drives every job itself.
    checkIntervalMs: 20,
  };
  const handle = await startCoordinator(config, { logger: silentLogger });
  const project = await fake.createProject({ path: 'bench/pickup', files: { 'README.md': 'bench\n' } });
  const samples = [];
  try {
    for (let i = 0; i < jobs; i++) {
      if (warm) await poolReady(handle);
      const p = await fake.createPipeline(project, [{ name: `pickup-${i}`, git_strategy: 'none', script: ['date +%s%3N'] }]);
      const job = await fake.waitForJobState(p.jobIds[0], ['success', 'failed'], 30_000);
      if (job.state !== 'success') throw new Error(`bench job failed: ${job.traceText.slice(-500)}`);
      const m = /\$ date \+%s%3N\S*\n(\d{13})/.exec(job.traceText.replace(/\x1b\[[0-9;]*m/g, ''));
      if (!m) throw new Error('bench: no timestamp in trace');
      samples.push(Number(m[1]) - job.startedAt);
    }
  } finally {
    handle.stop();
    await handle.done;
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return samples.sort((a, b) => a - b);
}

export async function benchPickup() {
  const warm = await measure(100, { warm: true });
  const cold = await measure(15, { warm: false });
  return [
    { name: 'pickup_ready_machine_median', value: percentile(warm, 50), unit: 'ms' },
    { name: 'pickup_ready_machine_p99', value: percentile(warm, 99), unit: 'ms' },
    { name: 'pickup_new_local_machine_median_baseline', value: percentile(cold, 50), unit: 'ms' },
    { name: 'pickup_new_local_machine_p99_baseline', value: percentile(cold, 99), unit: 'ms' },
  ];
}
