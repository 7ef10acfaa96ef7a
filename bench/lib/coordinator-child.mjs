// The coordinator of a bench, alone in a process of its own (so its CPU and memory are its own, and the
// fake GitLab in the parent does not share its event loop): the real startCoordinator, with machines that
// are slices of one shared sshd (shared-sshd.mjs). Driven over IPC by bench/lib/child.mjs:
//   parent → {cmd: 'stats'}  → child answers {stats: {cpuUs, rssBytes, heapBytes}}
//   parent → {cmd: 'stop'}   → child stops the coordinator (drain) and exits
//   parent → {cmd: 'exit'}   → child exits at once, no drain (a profile with --cpu-prof is written)
// Settings come as JSON in BENCH_COORDINATOR.
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
    executors: [{ name: 'bench', provider: 'local', maxMachines: s.concurrent, local: { root: join(s.dir, 'unused') } }],
  }),
  // Faster polling than a config file may ask for (checkInterval ≥ 1s): the bench queues every job itself.
  checkIntervalMs: s.checkIntervalMs ?? 20,
};
const provider = new SlicedProvider(s.connection, join(s.dir, 'slices'));
const logger = s.logLevel ? createLogger({ level: s.logLevel, format: 'json', secrets: () => [s.token] }) : silentLogger;
const handle = await startCoordinator(config, { logger, providerFor: () => provider });
process.on('message', async (m) => {
  if (m.cmd === 'stats') {
    const u = process.cpuUsage();
    const mem = process.memoryUsage();
    process.send({ stats: { cpuUs: u.user + u.system, rssBytes: mem.rss, heapBytes: mem.heapUsed, externalBytes: mem.external + mem.arrayBuffers } });
  } else if (m.cmd === 'exit') {
    process.exit(0); // no drain, but a normal exit: --cpu-prof writes its profile
  } else if (m.cmd === 'stop') {
    handle.stop();
    await handle.done;
    process.send({ stopped: true }, () => process.exit(0));
  }
});
process.send({ ready: true });
