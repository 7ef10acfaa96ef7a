// Trace end to end: a job writes 100 MB of build-log-like text through SSH, with masking on (20 masked
// variables, plus the token prefixes the masker always looks for), into the fake GitLab: the real
// coordinator (its own process), shell executor, detached stage, trace pipeline, spool and trace PATCHes.
// Time = the job's duration (handout to final state) minus an empty job's, measured in the same run.
// Floor: `head -c 100M /dev/zero` on an already-open SSH connection to the same sshd, read by ssh2 in this
// process (the raw channel, as the issue defines it). Delivery alone has a floor of its own: the trace GitLab
// stored, PATCHed again in the same pieces by a bare loop in its own process (lib/patch-loop.mjs): what the
// fake GitLab's handling and loopback TCP allow, PATCHes being one at a time by GitLab's protocol.
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { FakeGitLab } from '../dist/fakegitlab/index.js';
import { startChild } from './lib/child.mjs';
import { killLeftovers, startSharedSshd } from './lib/shared-sshd.mjs';

const BYTES = 100 * 1024 * 1024;
const RUNS = Number(process.env.BENCH_TRACE_E2E_RUNS ?? 3);

function rawChannelSeconds(connection, command) {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => {
      const t0 = process.hrtime.bigint();
      let got = 0;
      c.exec(command, (err, ch) => {
        if (err) return reject(err);
        ch.on('data', (d) => (got += d.length));
        ch.stderr.on('data', () => undefined);
        ch.on('close', () => {
          const s = Number(process.hrtime.bigint() - t0) / 1e9;
          c.end();
          if (got !== BYTES) reject(new Error(`bench trace-e2e: floor got ${got} bytes`));
          else resolve(s);
        });
      });
    });
    c.on('error', reject);
    c.connect({ host: connection.host, port: connection.port, username: connection.username, privateKey: connection.privateKey });
  });
}

export async function benchTraceE2e() {
  const dir = mkdtempSync(join(tmpdir(), 'fr-bench-trace-e2e-'));
  const sshd = await startSharedSshd(join(dir, 'sshd'));
  const fake = new FakeGitLab({ traceUpdateIntervalS: 3, checkIntervalMs: 20, outputLimitBytes: 128 * 1024 * 1024 });
  await fake.start();
  let child;
  try {
    const runner = fake.addRunner();
    child = await startChild('./coordinator-child.mjs', {
      BENCH_COORDINATOR: JSON.stringify({ gitlabUrl: fake.url, token: runner.token, dir, concurrent: 1, outputLimit: '128MiB', connection: sshd.connection }),
    }, { execArgv: process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [] });
    const project = await fake.createProject({ path: 'bench/trace', files: { 'README.md': 'bench\n' } });
    const variables = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`SECRET_${i}`, { value: `${Math.random().toString(36).slice(2, 10)}${i}xyzSecret`, masked: true }]));
    const run = async (name, script) => {
      const p = await fake.createPipeline(project, [{ name, git_strategy: 'none', script, variables }]);
      const job = await fake.waitForJobState(p.jobIds[0], ['success', 'failed'], 600_000);
      if (job.state !== 'success') throw new Error(`bench trace-e2e: ${name} failed: ${job.traceText.slice(-300)}`);
      return job;
    };
    const empty = await run('empty', ['true']);
    // A token-prefixed word on every line, so the masker's prefix rule works as hard as in a real job; made
    // now, never a literal.
    const token = `glpat-${randomBytes(15).toString('base64url')}`;
    const line = `[1234] compiling src/module_name.ts … ok ✓ 12ms (token ${token})`;
    // Several runs, each with its floor measured just before it; the median run by ratio is reported (one
    // run on this host moves by a third with what the host does at the time).
    const lineBytes = Buffer.byteLength(line) + 1;
    const samples = [];
    for (let i = 0; i < RUNS; i++) {
      const floorS = await rawChannelSeconds(sshd.connection, `head -c ${BYTES} /dev/zero`);
      const big = await run(`big-${i}`, [`head -c ${BYTES} < <(yes '${line}')`]);
      // Each whole line's token is stored as glpat-[MASKED]; the runner's own lines come on top (about what
      // the empty job's trace holds); the cut last line may differ.
      const expected = BYTES - Math.floor(BYTES / lineBytes) * (token.length - 'glpat-[MASKED]'.length) + empty.trace.length;
      if (Math.abs(big.trace.length - expected) > 2 * lineBytes) throw new Error(`bench trace-e2e: GitLab has ${big.trace.length} bytes, expected about ${expected} (${BYTES} masked)`);
      if (process.env.BENCH_VERBOSE) {
        const at = big.patches.map((x) => x.at - big.startedAt);
        process.stderr.write(`patches ${at.length}: first at ${at[0]} ms, 10th ${at[9]}, 50th ${at[49]}, last ${at.at(-1)}; job ${big.finishedAt - big.startedAt} ms\n`);
        process.stderr.write(`updates: ${big.updates.map((u) => `${u.at - big.startedAt}:${u.state ?? ''}`).join(' ')}\n`);
      }
      const jobS = (big.finishedAt - big.startedAt - (empty.finishedAt - empty.startedAt)) / 1000;
      // PATCHes go back to back while a full 1 MiB piece is waiting, from the first one on: the span from
      // the first PATCH to the last is delivery at the pace of one PATCH round trip after another.
      const at = big.patches.map((x) => x.at);
      const deliveryS = (at.at(-1) - at[0]) / 1000;
      samples.push({ floorS, jobS, deliveryS, patches: big.patches.length, stored: big.trace, ratio: floorS / jobS });
    }
    samples.sort((x, y) => x.ratio - y.ratio);
    const { floorS, jobS, deliveryS, patches, stored } = samples[samples.length >> 1];
    const spread = samples.map((x) => x.ratio.toFixed(3)).join(', ');
    const perPatchMs = (1000 * deliveryS) / Math.max(1, patches - 1);
    // What the sink allows: the trace GitLab stored, PATCHed again in the same 1 MiB pieces by a bare loop
    // in a process of its own, into the same fake (its checks, loopback TCP), the coordinator stopped.
    await child.stop();
    child = undefined;
    const sink = await deliveryFloor(fake, project, join(dir, 'stored.log'), stored);
    return [
      { name: 'trace_e2e_ratio_to_ssh_channel', value: +(floorS / jobS).toFixed(3), unit: 'ratio', goal: '>= 0.7', what: `100 MB masked into the fake GitLab in ${jobS.toFixed(2)} s (job minus an empty job); floor: head -c 100M /dev/zero over an open SSH connection ${floorS.toFixed(2)} s; the median of ${RUNS} runs (${spread})` },
      { name: 'trace_e2e_mb_per_s', value: +(100 / jobS).toFixed(1), unit: 'MB/s', floor: +(100 / floorS).toFixed(1) },
      { name: 'trace_delivery_mb_per_s', value: +(stored.length / 1e6 / deliveryS).toFixed(1), unit: 'MB/s', floor: +(stored.length / 1e6 / sink.seconds).toFixed(1), what: `${patches} PATCHes of at most 1 MiB from the first to the last in ${deliveryS.toFixed(2)} s, ${perPatchMs.toFixed(1)} ms each (one round trip after another, the fake GitLab's checks included); floor: the stored trace PATCHed again by a bare loop, ${((1000 * sink.seconds) / sink.patches).toFixed(1)} ms each` },
    ];
  } finally {
    await child?.stop().catch(() => child.kill());
    await fake.stop();
    sshd.stop();
    await killLeftovers(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Seconds for a bare loop in its own process to PATCH `bytes` into a fresh job, in 1 MiB pieces. */
async function deliveryFloor(fake, project, file, bytes) {
  writeFileSync(file, bytes);
  const runner = fake.addRunner();
  await fake.createPipeline(project, [{ name: 'sink-floor', git_strategy: 'none', script: ['true'] }]);
  // Not execFileSync: the fake answers from this process.
  const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(new URL('./lib/patch-loop.mjs', import.meta.url)), fake.url, runner.token, file], { encoding: 'utf8' });
  return JSON.parse(stdout.trim().split('\n').at(-1));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await benchTraceE2e()) console.log(JSON.stringify(r));
}
