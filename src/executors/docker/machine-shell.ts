// Commands on the machine for the docker style: short housekeeping scripts (docker network create,
// inspect, env files, removal) and long, stoppable ones (pulls, service waits, build stages). Scripts
// go to the machine's bash on stdin, so nothing in them (file contents included) shows up in a process
// list; only the docker CLI's own argv does, and it carries no secret.

import { randomBytes } from 'node:crypto';

import { MachineLostError, type TraceSink } from '../../core/index.js';
import { channelExit, runRemoteStage, shellQuote, type StageExit } from '../remote-shell.js';
import type { SshConnection } from '../ssh-connection.js';

export interface HostResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Output of a stoppable command, kept in memory (bounded) instead of going to the trace. */
export class CapturedOutput implements TraceSink {
  private text = '';
  constructor(private readonly limit = 64 * 1024) {}
  write(chunk: string | Uint8Array): void {
    this.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }
  flush(): void {}
  addSecrets(): void {}
  toString(): string {
    return this.text;
  }
}

export class MachineShell {
  private n = 0;

  constructor(
    /** Replaced when a stage reconnected after the connection dropped (DetachedTransport's onConnection). */
    public conn: SshConnection,
    /** Private directory of the job on the machine (pid files, env files, Docker configs). */
    readonly runDir: string,
    private readonly killGraceMs: number,
  ) {}

  /** Creates the job's private directory in the machine's $TMPDIR. */
  static async makeRunDir(conn: SshConnection, jobId: number): Promise<string> {
    const name = `fleetrunner-job-${jobId}-${randomBytes(4).toString('hex')}`;
    const r = await hostExec(conn, `d="\${TMPDIR:-/tmp}/${name}" && mkdir -m 700 "$d" && printf '%s\\n' "$d"`);
    const dir = r.stdout.split('\n')[0] ?? '';
    if (r.exitCode !== 0 || !dir.startsWith('/')) {
      throw new Error(`could not prepare the machine: ${(r.stderr || r.stdout).trim() || `exit ${r.exitCode}`}`);
    }
    return dir;
  }

  /** A short script; resolves with its exit code and output. */
  exec(script: string, timeoutMs = 120_000): Promise<HostResult> {
    return hostExec(this.conn, script, timeoutMs);
  }

  /** Like exec, but a non-zero exit rejects with the script's error output. */
  async check(script: string, what: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(script, timeoutMs);
    if (r.exitCode !== 0) throw new Error(`${what}: ${lastLines(r.stderr || r.stdout) || `exit code ${r.exitCode}`}`);
    return r.stdout;
  }

  /** A long script that `stop` kills (its whole process group on the machine); output goes to `sink`. */
  run(script: string, sink: TraceSink, stop: AbortSignal, label = 'cmd'): Promise<StageExit> {
    return runRemoteStage({
      conn: this.conn,
      script,
      pidFile: `${this.runDir}/${++this.n}-${label.replace(/[^A-Za-z0-9_.-]/g, '_')}.pid`,
      trace: sink,
      stop,
      killGraceMs: this.killGraceMs,
    });
  }

  /** Writes `content` to `path` (mode 600) with bash builtins only: the content (a secret) is never an argument. */
  async writePrivateFile(path: string, content: string): Promise<void> {
    await this.check(`(umask 077 && printf '%s' ${shellQuote(content)} > ${shellQuote(path)})`, `could not write ${path}`);
  }
}

export function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join('\n').trim();
}

/** Runs `script` in the machine's bash (sent on stdin). Rejects only when the machine is lost or it hangs. */
export async function hostExec(conn: SshConnection, script: string, timeoutMs = 120_000): Promise<HostResult> {
  // Read the whole script first: a command in it that reads stdin must not swallow the rest.
  const ch = await conn.exec(`exec bash --noprofile --norc -c 'eval "$(cat)" </dev/null'`);
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      off();
      ch.close();
      reject(new Error(`command on the machine did not finish within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    const off = conn.onLost((e) => {
      clearTimeout(timer);
      reject(e);
    });
    ch.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    ch.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    ch.on('close', (code?: number | null, signal?: string) => {
      clearTimeout(timer);
      off();
      if (conn.lost) return reject(conn.lost);
      const exit = channelExit(code, signal);
      if (!exit) return reject(new MachineLostError(`command channel closed without an exit status (${conn.target})`));
      resolve({ exitCode: 'exitCode' in exit ? exit.exitCode : 128, stdout, stderr });
    });
    ch.end(script.endsWith('\n') ? script : `${script}\n`);
  });
}
