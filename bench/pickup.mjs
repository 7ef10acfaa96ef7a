// Job pickup latency: from the fake GitLab handing a job out (its 201) to the job's first user command
// running on the machine (GIT_STRATEGY none, script `date +%s%3N`). The real coordinator, GitLab client,
// SSH executor and job scripts; machines from the local provider.
//   - ready machine: machines started before the clock runs ("a machine already up")
//   - baseline in the same run: a fresh local machine per job (what the per-job path costs today)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../dist/config/index.js';
import { startCoordinator } from '../dist/cli/run.js';
import { FakeGitLab } from '../dist/fakegitlab/index.js';
import { LocalProvider } from '../dist/providers/local/index.js';
import { silentLogger } from '../dist/core/logger.js';

/** Hands out machines started in advance; terminates through the real provider. */
class ReadyMachines {
  name = 'ready-local';
  constructor(inner) { this.inner = inner; this.ready = []; }
  async warm(n, tags) {
    const { machines, errors } = await this.inner.create(n, tags);
    if (errors.length) throw errors[0];
    for (const m of machines) await this.inner.waitReady(m);
    this.ready.push(...machines);
  }
  async create(count, tags) {
    const machines = this.ready.splice(0, count);
    if (machines.length < count) {
      const more = await this.inner.create(count - machines.length, tags);
      machines.push(...more.machines);
    }
    return { machines, errors: [] };
  }
  list(tags) { return this.inner.list(tags); }
  waitReady(m, s) { return this.inner.waitReady(m, s); }
  terminate(ids) { return this.inner.terminate(ids); }
  shutdown() { return this.inner.shutdown(); }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(jobs, { warm }) {
  const dir = mkdtempSync(join(tmpdir(), 'fr-bench-pickup-'));
  const fake = new FakeGitLab({ traceUpdateIntervalS: 3 });
  await fake.start();
  const runner = fake.addRunner();
  const config = compileConfig({
    gitlab: { url: fake.url, token: runner.token }, concurrent: 1, checkInterval: '20ms', stateDir: join(dir, 'state'),
    log: { level: 'error' }, executors: [{ name: 'bench', provider: 'local', maxMachines: 1, local: { root: join(dir, 'machines') } }],
  });
  const local = new LocalProvider({ fleet: config.fleet, root: join(dir, 'machines'), logger: silentLogger });
  let ready;
  const handle = await startCoordinator(config, {
    logger: silentLogger,
    providerFor: () => (warm ? (ready = new ReadyMachines(local)) : local),
  });
  const project = await fake.createProject({ path: 'bench/pickup', files: { 'README.md': 'bench\n' } });
  const samples = [];
  try {
    for (let i = 0; i < jobs; i++) {
      // The coordinator's ownership tags are internal; ReadyMachines warms with the same tags it will be asked for.
      if (warm) await ready.warm(1, (await local.list({ fleet: config.fleet }))[0]?.tags ?? { fleet: config.fleet, executor: 'bench', coordinator: 'bench' });
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
  const warm = await measure(40, { warm: true });
  const cold = await measure(15, { warm: false });
  return [
    { name: 'pickup_ready_machine_median', value: percentile(warm, 50), unit: 'ms' },
    { name: 'pickup_ready_machine_p99', value: percentile(warm, 99), unit: 'ms' },
    { name: 'pickup_new_local_machine_median_baseline', value: percentile(cold, 50), unit: 'ms' },
    { name: 'pickup_new_local_machine_p99_baseline', value: percentile(cold, 99), unit: 'ms' },
  ];
}
