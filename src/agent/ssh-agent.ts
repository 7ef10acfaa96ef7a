// The agent that drives a job's own image on Fargate: an SSH server that runs in the job's container (its
// entry point, started through the bundle's dynamic loader, so the image needs no sshd, no shell and no
// libc of any particular kind). The coordinator reaches it as it reaches an instance: its host key pinned,
// one client key authorised (both from the task's container overrides), exec channels only.
//
// Each exec runs `bash -c COMMAND` (the bundle's bash) in a session of its own, as sshd does, with the
// bundle's tools first on PATH (bash, setsid, tail: what the shell-style stages need, docs/architecture.md)
// and the image's own PATH after them. When a connection drops, the command's pipes are closed and nothing
// is killed: a detached stage goes on, as under sshd without a terminal.
//
// Nothing leaks if no coordinator comes back: like the EC2 instance agent, a watchdog ends the agent (and so
// the task: the job's container is essential) when nothing under work/state has changed for the idle
// timeout (the coordinator's heartbeat and the job's records are written there), and at the maximum
// lifetime whatever runs (FLEETRUNNER_AGENT_IDLE_TIMEOUT_S, FLEETRUNNER_AGENT_MAX_LIFETIME_S).
//
// Standalone: imports only ssh2 and Node, because it runs from the bundle (bundle.ts), not from the
// coordinator's tree. Started as `node ssh-agent.js`; reads FLEETRUNNER_AGENT_HOST_KEY,
// FLEETRUNNER_AGENT_AUTHORIZED_KEY and FLEETRUNNER_AGENT_PORT, and removes them from what jobs inherit.

import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import ssh2 from 'ssh2';

const { Server, utils } = ssh2;

export interface BundleManifest {
  /** The dynamic loader, relative to the bundle root (lib/ld-linux-x86-64.so.2). */
  loader: string;
}

const ENV_KEYS = ['FLEETRUNNER_AGENT_HOST_KEY', 'FLEETRUNNER_AGENT_AUTHORIZED_KEY', 'FLEETRUNNER_AGENT_PORT', 'FLEETRUNNER_AGENT_IDLE_TIMEOUT_S', 'FLEETRUNNER_AGENT_MAX_LIFETIME_S'];

export type WatchdogDecision = { kind: 'keep' } | { kind: 'exit'; reason: 'idle' | 'max_lifetime' };

/** Pure: whether the agent ends now, given when it started and when anything under work/state last changed. */
export function watchdogDecision(now: number, startedAt: number, lastActivity: number, limits: { idleMs: number; maxLifetimeMs: number }): WatchdogDecision {
  if (now - startedAt >= limits.maxLifetimeMs) return { kind: 'exit', reason: 'max_lifetime' };
  if (now - Math.max(startedAt, lastActivity) >= limits.idleMs) return { kind: 'exit', reason: 'idle' };
  return { kind: 'keep' };
}

/** The newest modification time under `dir`, a few levels deep (state/jobs/<id>/<n>.out), 0 when empty. */
function newestMtime(dir: string, depth = 3): number {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
    newest = statSync(dir).mtimeMs;
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    try {
      newest = Math.max(newest, e.isDirectory() && depth > 0 ? newestMtime(p, depth - 1) : statSync(p).mtimeMs);
    } catch {
      // removed meanwhile
    }
  }
  return newest;
}

function fail(message: string): never {
  process.stderr.write(`fleetrunner-agent: ${message}\n`);
  process.exit(2);
}

function main(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const manifest = JSON.parse(readFileSync(join(root, 'bundle.json'), 'utf8')) as BundleManifest;
  const hostKey = process.env.FLEETRUNNER_AGENT_HOST_KEY ?? fail('FLEETRUNNER_AGENT_HOST_KEY is not set');
  const authorized = utils.parseKey(process.env.FLEETRUNNER_AGENT_AUTHORIZED_KEY ?? fail('FLEETRUNNER_AGENT_AUTHORIZED_KEY is not set'));
  const allowed = Array.isArray(authorized) ? authorized[0] : authorized;
  if (!allowed || allowed instanceof Error) fail('FLEETRUNNER_AGENT_AUTHORIZED_KEY is not a public key');
  const port = Number(process.env.FLEETRUNNER_AGENT_PORT ?? '2222');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !ENV_KEYS.includes(k)) env[k] = v;
  env.PATH = `${join(root, 'bin')}:${process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`;
  env.HOME ??= '/root';
  // core/agent-bundle.ts names them (AGENT_*_DIR); this file imports nothing of ours.
  for (const d of ['work/builds', 'work/cache', 'work/state']) mkdirSync(join(root, d), { recursive: true, mode: 0o700 });
  const bash = [join(root, manifest.loader), '--library-path', join(root, 'lib'), join(root, 'libexec', 'bash')];
  const allowedBlob = allowed.getPublicSSH();

  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowedBlob)) return ctx.reject(['publickey']);
      if (!ctx.signature || !ctx.blob) return ctx.accept(); // the client asks whether this key would do
      return allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true ? ctx.accept() : ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, _reject, info) => {
          const ch = accept();
          const [file, ...args] = bash;
          const child = spawn(file!, [...args, '-c', info.command], { env, cwd: env.HOME, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
          const ignore = () => undefined;
          child.stdin.on('error', ignore);
          child.stdout.on('error', ignore);
          child.stderr.on('error', ignore);
          ch.on('error', ignore);
          ch.on('data', (d: Buffer) => child.stdin.write(d));
          ch.on('end', () => child.stdin.end());
          child.stdout.on('data', (d: Buffer) => ch.write(d));
          child.stderr.on('data', (d: Buffer) => ch.stderr.write(d));
          let open = true;
          ch.on('close', () => {
            // The client went away: close the pipes, kill nothing (a detached stage goes on).
            open = false;
            child.stdin.destroy();
            child.stdout.destroy();
            child.stderr.destroy();
          });
          child.on('error', (e) => {
            if (!open) return;
            ch.stderr.write(`fleetrunner-agent: ${e.message}\n`);
            ch.exit(127);
            ch.end();
          });
          child.on('close', (code, signal) => {
            if (!open) return;
            if (signal) ch.exit(signal.replace(/^SIG/, ''), false, '');
            else ch.exit(code ?? 255);
            ch.end();
          });
        });
        session.on('pty', (_accept, reject) => reject?.());
        session.on('shell', (_accept, reject) => reject());
        session.on('subsystem', (_accept, reject) => reject());
      });
    });
  });
  const startedAt = Date.now();
  const limits = { idleMs: Number(process.env.FLEETRUNNER_AGENT_IDLE_TIMEOUT_S ?? '1800') * 1000, maxLifetimeMs: Number(process.env.FLEETRUNNER_AGENT_MAX_LIFETIME_S ?? '86400') * 1000 };
  setInterval(() => {
    const d = watchdogDecision(Date.now(), startedAt, newestMtime(join(root, 'work', 'state')), limits);
    if (d.kind === 'exit') {
      process.stderr.write(`fleetrunner-agent: watchdog: ${d.reason === 'idle' ? 'no coordinator heartbeat and no job activity' : 'maximum lifetime reached'}; exiting\n`);
      process.exit(0);
    }
  }, 30_000).unref();
  server.on('error', (e: Error) => fail(`cannot serve on port ${port}: ${e.message}`));
  server.listen(port, '0.0.0.0', () => process.stdout.write(`fleetrunner-agent: listening on port ${port}\n`));
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => process.exit(0));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
