// Detached stages against a real local sshd, reached through a TCP proxy the test can cut: a dropped
// connection does not stop the stage, the follower reconnects and goes on from its offset, the exit code
// is the stage's own; stopping still kills the stage's process group.
import { createServer, connect, type Server, type Socket } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger, systemClock, type ConnectionInfo } from '../../../src/core/index.js';
import { runDetachedStage } from '../../../src/executors/detached-stage.js';
import { jobDirOf, stageFiles } from '../../../src/executors/job-records.js';
import { connectSsh, type SshConnection } from '../../../src/executors/ssh-connection.js';
import { RecordingTrace, executorFor, makePlan, makeRun, pgrep, stage, startMachine, uniqueSleep, type TestMachine } from './harness.js';

/** Forwards to the machine's sshd; `cut()` drops every connection made so far. */
async function proxyTo(port: number): Promise<{ port: number; cut(): void; close(): void; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no proxy port');
  const cut = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port: addr.port,
    server,
    cut,
    close() {
      cut();
      server.close();
    },
  };
}

const connectTo = (info: ConnectionInfo): Promise<SshConnection> => connectSsh(info, { connectTimeoutMs: 10_000, keepaliveIntervalMs: 1_000, keepaliveCountMax: 3, clock: systemClock, logger: silentLogger });

let m: TestMachine;
beforeAll(async () => {
  m = await startMachine();
}, 60_000);
afterAll(async () => {
  await m?.dispose();
});

describe('detached stages', () => {
  it('a dropped connection does not stop the stage: the follower reconnects and reads on from its offset', async () => {
    const proxy = await proxyTo(m.info.port);
    const info = { ...m.info, port: proxy.port };
    const conn = await connectTo(info);
    let current = conn;
    const trace = new RecordingTrace();
    const files = stageFiles(jobDirOf(info.stateDir, 4242), 1);
    try {
      const done = runDetachedStage({
        conn,
        reconnect: async () => (current = await connectTo(info)),
        files,
        launch: { script: () => 'for i in $(seq 1 30); do echo "line $i"; sleep 0.05; done; exit 7', records: { jobId: 4242, sessionJson: '{}', jobJson: '{}' } },
        from: 0,
        trace,
        stop: new AbortController().signal,
        killGraceMs: 500,
        clock: systemClock,
        logger: silentLogger,
      });
      await trace.waitFor('line 5\n');
      proxy.cut();
      expect(await done).toEqual({ exitCode: 7 });
      expect(current).not.toBe(conn);
      expect(trace.text()).toBe(Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join(''));
      expect((await current.output(`cat ${files.exit}`)).trim()).toBe('7');
    } finally {
      current.close();
      proxy.close();
    }
  }, 60_000);

  it('stopping still kills the stage by process group, and its exit file says so', async () => {
    const conn = await connectTo(m.info);
    const trace = new RecordingTrace();
    const files = stageFiles(jobDirOf(m.info.stateDir, 4243), 1);
    const sleep = uniqueSleep();
    const stop = new AbortController();
    try {
      const done = runDetachedStage({
        conn,
        reconnect: () => connectTo(m.info),
        files,
        launch: { script: () => `echo started; sleep ${sleep} & sleep ${sleep}`, records: { jobId: 4243, sessionJson: '{}' } },
        from: 0,
        trace,
        stop: stop.signal,
        killGraceMs: 500,
        clock: systemClock,
        logger: silentLogger,
      });
      await trace.waitFor('started');
      // `started` comes before the two sleeps are forked and exec'd: on a loaded host that takes a while.
      await expect.poll(() => pgrep(`sleep ${sleep}`).length, { timeout: 10_000, interval: 20 }).toBe(2);
      stop.abort();
      expect(await done).toEqual({ signal: 'TERM' });
      expect(pgrep(`sleep ${sleep}`)).toEqual([]);
      expect((await conn.output(`cat ${files.exit}`)).trim()).toBe('143');
    } finally {
      conn.close();
    }
  }, 60_000);

  it('a shell job whose connection drops mid-script still succeeds with its whole output', async () => {
    const proxy = await proxyTo(m.info.port);
    const info = { ...m.info, port: proxy.port };
    const run = makeRun();
    try {
      const plan = makePlan(info, { user: [stage('step_script', 'for i in $(seq 1 20); do echo "n=$i"; sleep 0.05; done')] });
      const done = executorFor(plan).run(info, run.ctx);
      await run.trace.waitFor('n=3\n');
      proxy.cut();
      expect(await done).toEqual({ state: 'success' });
      const numbers = [...run.trace.plain().matchAll(/^n=(\d+)$/gm)].map((x) => Number(x[1]));
      expect(numbers).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(run.trace.plain()).toContain('stage:cleanup');
    } finally {
      proxy.close();
    }
  }, 60_000);

  it('a stage runs with the machine\'s own umask, not the private one its records are written with', async () => {
    const run = makeRun();
    const plan = makePlan(m.info, { user: [stage('step_script', 'echo "umask=$(umask)"; mkdir -p made && stat -c "mode=%a" made')] });
    expect(await executorFor(plan).run(m.info, run.ctx)).toEqual({ state: 'success' });
    const umask = /umask=(\d+)/.exec(run.trace.plain())?.[1];
    expect(umask).toBeDefined();
    expect(umask).not.toBe('0077');
    // In the docker style a job image's user other than root must reach what the machine's stages made.
    expect(run.trace.plain()).not.toContain('mode=700');
  }, 60_000);

  it('a stage leads a process group of its own, apart from its launcher, with SIGINT not ignored', async () => {
    const run = makeRun();
    const script = [
      'read -r _ _ _ ppid pgid _ < /proc/$$/stat',
      'read -r _ _ _ _ ppgid _ < /proc/$ppid/stat',
      'echo "self=$$ pgid=$pgid parent_pgid=$ppgid"',
      'echo "ignored=$(sed -n "s/^SigIgn:\\t//p" /proc/$$/status)"',
    ].join('\n');
    const plan = makePlan(m.info, { user: [stage('step_script', script)] });
    expect(await executorFor(plan).run(m.info, run.ctx)).toEqual({ state: 'success' });
    const ids = /self=(\d+) pgid=(\d+) parent_pgid=(\d+)/.exec(run.trace.plain());
    expect(ids).not.toBeNull();
    // The stage's bash is the group's leader (a stop kills that group), and its launcher is elsewhere.
    expect(ids![2]).toBe(ids![1]);
    expect(ids![3]).not.toBe(ids![1]);
    const ignored = /ignored=([0-9a-f]+)/.exec(run.trace.plain())?.[1];
    expect(ignored).toBeDefined();
    expect(BigInt(`0x${ignored}`) & 2n).toBe(0n); // bit 1: SIGINT
  }, 60_000);
});
