// Job pickup latency: from the fake GitLab handing a job out (its 201) to the job's first user command
// running on the machine (GIT_STRATEGY none, script `date +%s%3N`). The real coordinator, GitLab client,
// SSH executor and job scripts; machines from the local provider.
//   - ready machine: the executor's idle pool (pool.idleCount: 1) has a machine up, its SSH connection
//     held, before the job is handed out ("a machine already up"); the bench waits for the pool to refill
//     between jobs
//   - baseline in the same run: no pool, a fresh local machine per job
//   - floor in the same run (the issue's): a bare `date +%s%3N` on an already-open SSH connection to a local
//     machine of the same provider: from sending the exec to the command running, the same clock (one host)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../dist/config/index.js';
import { startCoordinator } from '../dist/cli/run.js';
import { FakeGitLab } from '../dist/fakegitlab/index.js';
import { silentLogger } from '../dist/core/logger.js';
import { LocalProvider } from '../dist/providers/local/index.js';
import ssh2 from 'ssh2';

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

/** `date +%s%3N` on an open connection, `n` times: ms from sending the exec to the command's clock. */
async function bareExec(n) {
  const dir = mkdtempSync(join(tmpdir(), 'fr-bench-bare-'));
  const provider = new LocalProvider({ fleet: 'bench-bare', root: join(dir, 'machines') });
  const tags = { fleet: 'bench-bare', executor: 'bench', coordinator: 'bench' };
  const { machines, errors } = await provider.create(1, tags);
  if (errors.length) throw errors[0];
  try {
    const info = await provider.waitReady(machines[0]);
    const c = new ssh2.Client();
    await new Promise((resolve, reject) => {
      c.on('ready', resolve).on('error', reject);
      c.connect({ host: info.host, port: info.port, username: info.username, privateKey: info.privateKey });
    });
    const samples = [];
    for (let i = 0; i < n; i++) {
      const t0 = Date.now();
      const out = await new Promise((resolve, reject) => {
        c.exec('date +%s%3N', (err, ch) => {
          if (err) return reject(err);
          let o = '';
          ch.on('data', (d) => (o += d)).on('close', () => resolve(o));
          ch.stderr.resume();
        });
      });
      samples.push(Number(out.trim()) - t0);
    }
    c.end();
    return samples.sort((a, b) => a - b);
  } finally {
    await provider.terminate(machines.map((m) => m.id));
    await provider.shutdown?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchPickup() {
  // Each warm job is followed by a new pool machine (local machines are used once): ~2-4 s a job here.
  const warm = await measure(Number(process.env.BENCH_PICKUP_JOBS ?? 100), { warm: true });
  const cold = await measure(8, { warm: false });
  const bare = await bareExec(100);
  const ratio = percentile(warm, 99) / Math.max(1, percentile(bare, 99));
  return [
    { name: 'pickup_p99_ratio_to_bare_exec', value: +ratio.toFixed(2), unit: 'ratio', goal: '<= 1.5', what: `warm pickup p99 ${percentile(warm, 99)} ms vs a bare command on an open SSH connection p99 ${percentile(bare, 99)} ms (median ${percentile(bare, 50)} ms)` },
    { name: 'bare_exec_on_open_connection_p99_floor', value: percentile(bare, 99), unit: 'ms' },
    { name: 'pickup_ready_machine_median', value: percentile(warm, 50), unit: 'ms' },
    { name: 'pickup_ready_machine_p99', value: percentile(warm, 99), unit: 'ms' },
    { name: 'pickup_new_local_machine_median_baseline', value: percentile(cold, 50), unit: 'ms' },
    { name: 'pickup_new_local_machine_p99_baseline', value: percentile(cold, 99), unit: 'ms' },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await benchPickup()) console.log(JSON.stringify(r));
}
