// The coordinator of a bench, alone in a process of its own (so its CPU and memory are its own, and the
// fake GitLab in the parent does not share its event loop): the real startCoordinator, with machines that
// are slices of one shared sshd (shared-sshd.mjs). Driven over IPC by bench/lib/child.mjs:
//   parent → {cmd: 'stats', gc?} → child answers {stats: {cpuUs, rssBytes, heapBytes}} (after a full GC with gc)
//   parent → {cmd: 'profile', on|file} → starts a CPU profile, or stops it and writes it to `file`
//   parent → {cmd: 'snapshot', file} → writes a heap snapshot to `file`
//   parent → {cmd: 'machines'} → child answers {machines: handle.machines()} (idle and busy per executor)
//   parent → {cmd: 'stop'}   → child stops the coordinator (drain) and exits
//   parent → {cmd: 'exit'}   → child exits at once, no drain (a profile with --cpu-prof is written)
// Settings come as JSON in BENCH_COORDINATOR (`idle`: the executor's pool.idleCount, machines made and
// connected to before any job comes).
import { getHeapSpaceStatistics } from 'node:v8';
import { join } from 'node:path';
import { compileConfig } from '../../dist/config/index.js';
import { startCoordinator } from '../../dist/cli/run.js';
import { silentLogger } from '../../dist/core/logger.js';
import { createLogger } from '../../dist/cli/logger.js';
import { SlicedProvider } from './shared-sshd.mjs';

const s = JSON.parse(process.env.BENCH_COORDINATOR ?? '{}');
const config = {
  ...compileConfig({
    gitlab: { url: s.gitlabUrl, token: s.token },
    concurrent: s.concurrent,
    requestConcurrency: s.requestConcurrency ?? 1,
    checkInterval: '1s',
    stateDir: join(s.dir, 'state'),
    outputLimit: s.outputLimit ?? '4MiB',
    log: { level: 'error' },
    executors: [{ name: 'bench', provider: 'local', maxMachines: s.concurrent, local: { root: join(s.dir, 'unused') }, ...(s.idle && { pool: { idleCount: s.idle } }) }],
  }),
  // Faster polling than a config file may ask for (checkInterval ≥ 1s): the bench queues every job itself.
  checkIntervalMs: s.checkIntervalMs ?? 20,
};
const provider = new SlicedProvider(s.connection, join(s.dir, 'slices'), { readyEveryMs: s.readyEveryMs ?? 0 });
const logger = s.logLevel ? createLogger({ level: s.logLevel, format: 'json', secrets: () => [s.token] }) : silentLogger;
const handle = await startCoordinator(config, { logger, providerFor: () => provider });
process.on('message', async (m) => {
  if (m.cmd === 'stats') {
    // m.gc: after a full collection (the child runs with --expose-gc), so memory is what is retained.
    if (m.gc && globalThis.gc) globalThis.gc();
    const u = process.cpuUsage();
    const mem = process.memoryUsage();
    // V8's spaces, committed and used: what the resident set holds beyond the live heap.
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((x) => [x.space_name, { size: x.space_size, used: x.space_used_size }]));
    process.send({ stats: { cpuUs: u.user + u.system, rssBytes: mem.rss, heapBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal, externalBytes: mem.external, spaces } });
  } else if (m.cmd === 'profile') {
    // A CPU profile of a window only (m.on: start; m.off: stop and write it to m.file).
    const { Session } = await import('node:inspector/promises');
    if (m.on) {
      globalThis.__benchSession = new Session();
      globalThis.__benchSession.connect();
      await globalThis.__benchSession.post('Profiler.enable');
      await globalThis.__benchSession.post('Profiler.start');
    } else {
      const { profile } = await globalThis.__benchSession.post('Profiler.stop');
      (await import('node:fs')).writeFileSync(m.file, JSON.stringify(profile));
    }
    process.send({ profiled: true });
  } else if (m.cmd === 'snapshot') {
    // A heap snapshot (what the jobs' state retains: a snapshot collects garbage first) written to m.file.
    (await import('node:v8')).writeHeapSnapshot(m.file);
    process.send({ snapshot: true });
  } else if (m.cmd === 'machines') {
    process.send({ machines: handle.machines() });
  } else if (m.cmd === 'exit') {
    process.exit(0); // no drain, but a normal exit: --cpu-prof writes its profile
  } else if (m.cmd === 'stop') {
    handle.stop();
    await handle.done;
    process.send({ stopped: true }, () => process.exit(0));
  }
});
process.send({ ready: true });
if (process.env.BENCH_LOOP_LAG) {
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  setInterval(() => {
    process.stderr.write(`loop lag max ${(h.max / 1e6).toFixed(0)} ms p99 ${(h.percentile(99) / 1e6).toFixed(0)} ms mean ${(h.mean / 1e6).toFixed(1)} ms\n`);
    h.reset();
  }, 1000).unref();
}
