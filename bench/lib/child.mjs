// Starts a bench child process (coordinator-child.mjs) and talks to it over IPC.
import { fork } from 'node:child_process';

export async function startChild(script, env, { execArgv = [] } = {}) {
  const child = fork(new URL(script, import.meta.url), [], { env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters = [];
  child.on('message', (m) => {
    const i = waiters.findIndex((w) => w.key in m);
    if (i < 0) return;
    const [w] = waiters.splice(i, 1);
    w.resolve(m[w.key]);
  });
  const next = (key) =>
    new Promise((resolve, reject) => {
      const onExit = (code) => reject(new Error(`bench child exited (${code}) while waiting for ${key}`));
      child.once('exit', onExit);
      waiters.push({
        key,
        resolve: (v) => {
          child.off('exit', onExit);
          resolve(v);
        },
      });
    });
  await next('ready');
  return {
    pid: child.pid,
    async stats({ gc = false } = {}) {
      const p = next('stats');
      child.send({ cmd: 'stats', gc });
      return p;
    },
    async profile(o) {
      const p = next('profiled');
      child.send({ cmd: 'profile', ...o });
      return p;
    },
    async snapshot(file) {
      const p = next('snapshot');
      child.send({ cmd: 'snapshot', file });
      return p;
    },
    async machines() {
      const p = next('machines');
      child.send({ cmd: 'machines' });
      return p;
    },
    async stop() {
      const p = next('stopped');
      child.send({ cmd: 'stop' });
      await p;
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
    async exit() {
      const exited = new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      child.send({ cmd: 'exit' });
      await exited;
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}
