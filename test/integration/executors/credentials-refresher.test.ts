// The file form of a job's AWS credentials on its machine, with this host's bash standing in for the
// machine's: the files (modes, the profile, what credential_process prints), and the refresher on a stepped
// clock — renewing at half-life through the job's connection and the one it reconnected with, masking each
// session before it is written, warning on a failure and trying again, and stopping the job only once a
// session expired without a successor.
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';

import type { AwsSession, TraceSink } from '../../../src/core/index.js';
import { silentLogger } from '../../../src/core/logger.js';
import { awsFilesOf, parseProcessOutput, processOutput, profileText, removeCommand, setupScript, withAwsFileVariables } from '../../../src/executors/aws-credentials-file.js';
import { CredentialsRefresher, RETRY_FIRST_MS } from '../../../src/executors/credentials-refresher.js';
import { JobAbortReason } from '../../../src/executors/job-abort.js';
import type { SshConnection } from '../../../src/executors/ssh-connection.js';
import { TraceWriter } from '../../../src/executors/trace-lines.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { settle, StepClock } from '../../helpers/step-clock.js';

const MIN = 60_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function jobDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'fr-aws-'));
  dirs.push(d);
  return join(d, 'jobs', '7');
}

function session(expiresAt: number): AwsSession {
  return { accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64url'), sessionToken: randomBytes(60).toString('base64'), expiresAt };
}

/** A connection whose commands run in this host's bash, at once: real files, no network. */
class LocalConn {
  lost: Error | undefined;
  readonly target = 'local';
  readonly commands: string[] = [];
  readonly scripts: string[] = [];
  onLost() {
    return () => undefined;
  }
  async exec(command: string) {
    this.commands.push(command);
    const ch = Object.assign(new EventEmitter(), {
      stderr: new EventEmitter(),
      close: () => undefined,
      end: (script: string) => {
        this.scripts.push(script);
        const r = spawnSync('bash', ['--noprofile', '--norc', '-c', 'eval "$(cat)"'], { input: script, encoding: 'utf8' });
        queueMicrotask(() => {
          if (r.stdout) ch.emit('data', Buffer.from(r.stdout));
          if (r.stderr) ch.stderr.emit('data', Buffer.from(r.stderr));
          ch.emit('close', r.status ?? 1);
        });
      },
    });
    return ch;
  }
  async output(command: string): Promise<string> {
    if (this.lost) throw this.lost;
    this.commands.push(command);
    return spawnSync('bash', ['-c', command], { encoding: 'utf8' }).stdout;
  }
}

class RecordingSink implements TraceSink {
  text = '';
  secrets: string[] = [];
  write(c: string | Uint8Array) {
    this.text += typeof c === 'string' ? c : Buffer.from(c).toString();
  }
  flush() {}
  addSecrets(v: readonly string[]) {
    this.secrets.push(...v);
  }
}

describe('the credentials files on the machine', () => {
  it('are private, name a credential_process that prints the session, and go at the end', () => {
    const f = awsFilesOf(jobDir());
    const s = session(Date.UTC(2026, 11, 7, 6, 0, 0));
    const r = spawnSync('bash', ['-c', 'eval "$(cat)"'], { input: setupScript(f, s), encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(statSync(f.dir).mode & 0o777).toBe(0o700);
    for (const p of [f.config, f.credentials, f.session]) expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readFileSync(f.config, 'utf8')).toBe(profileText(f));
    expect(readFileSync(f.credentials, 'utf8')).toBe(profileText(f));
    // What an SDK runs: the command after `credential_process =`, through a shell.
    const command = /^credential_process = (.*)$/m.exec(readFileSync(f.config, 'utf8'))![1]!;
    const printed = JSON.parse(spawnSync('sh', ['-c', command], { encoding: 'utf8' }).stdout) as Record<string, unknown>;
    expect(printed).toEqual({ Version: 1, AccessKeyId: s.accessKeyId, SecretAccessKey: s.secretAccessKey, SessionToken: s.sessionToken, Expiration: '2026-12-07T06:00:00.000Z' });
    expect(parseProcessOutput(processOutput(s))).toEqual(s);
    expect(spawnSync('bash', ['-c', removeCommand(f)]).status).toBe(0);
    expect(existsSync(f.dir)).toBe(false);
  });

  it('tell the job where its config is, once, and no keys', () => {
    const f = awsFilesOf('/var/lib/fleetrunner/jobs/7');
    const job = withAwsFileVariables(withAwsFileVariables(jobPayload({ id: 7 } as Parameters<typeof jobPayload>[0]), f), f);
    const aws = job.variables.filter((v) => v.key.startsWith('AWS_'));
    expect(aws).toEqual([
      { key: 'AWS_CONFIG_FILE', value: '/var/lib/fleetrunner/jobs/7/aws/config', public: false },
      { key: 'AWS_SHARED_CREDENTIALS_FILE', value: '/var/lib/fleetrunner/jobs/7/aws/credentials', public: false },
    ]);
  });
});

describe('CredentialsRefresher', () => {
  function setup(o: { first?: AwsSession; renewals?: Array<AwsSession | Error> } = {}) {
    const clock = new StepClock(Date.UTC(2026, 11, 7, 3, 0, 0));
    const dir = jobDir();
    const files = awsFilesOf(dir);
    const conn = new LocalConn();
    const sink = new RecordingSink();
    const trace = new TraceWriter(sink, clock);
    const queue = [...(o.renewals ?? [])];
    const renewed: AwsSession[] = [];
    const source = {
      ...(o.first && { session: o.first }),
      renew: async () => {
        const next = queue.shift();
        if (!next) throw new Error('no renewal scripted');
        if (next instanceof Error) throw next;
        renewed.push(next);
        return next;
      },
    };
    const start = () => CredentialsRefresher.start({ conn: conn as unknown as SshConnection, files, source, trace, clock, logger: silentLogger });
    const onMachine = () => parseProcessOutput(readFileSync(files.session, 'utf8'));
    return { clock, files, conn, sink, start, renewed, onMachine, dir };
  }

  it('writes the first session before the job starts, renews at half-life, masks each session first, and follows a reconnect', async () => {
    const t0 = Date.UTC(2026, 11, 7, 3, 0, 0);
    const first = session(t0 + 60 * MIN);
    const second = session(t0 + 90 * MIN);
    const third = session(t0 + 150 * MIN);
    const h = setup({ first, renewals: [second, third] });
    const r = (await h.start())!;
    expect(h.onMachine()).toEqual(first);
    // Secrets travel on stdin, never on a command line.
    for (const c of h.conn.commands) for (const v of [first.secretAccessKey, first.sessionToken]) expect(c).not.toContain(v);

    await h.clock.advance(30 * MIN - 1);
    expect(h.renewed).toHaveLength(0);
    await h.clock.advance(1);
    await settle();
    expect(h.onMachine()).toEqual(second);
    expect(h.sink.secrets).toEqual(expect.arrayContaining([second.accessKeyId, second.secretAccessKey, second.sessionToken]));

    // The job reconnected: the next renewal goes through the new connection.
    const other = new LocalConn();
    h.conn.lost = new Error('connection reset');
    r.follow(other as unknown as SshConnection);
    await h.clock.advance(30 * MIN); // half of the second session's 60 minutes left
    await settle();
    expect(h.onMachine()).toEqual(third);
    expect(other.scripts).toHaveLength(1);
    r.stop();
    await h.clock.advance(600 * MIN);
    expect(h.renewed).toHaveLength(2);
    expect(r.expired.aborted).toBe(false);
    expect(h.sink.text).toBe('');
  });

  it('warns on a failed renewal and tries again; a session that expires without a successor stops the job', async () => {
    const t0 = Date.UTC(2026, 11, 7, 3, 0, 0);
    const first = session(t0 + 20 * MIN);
    const later = session(t0 + 80 * MIN);
    const h = setup({ first, renewals: [new Error('STS AssumeRole on arn:aws:iam::123456789012:role/x: Throttling: Rate exceeded'), later] });
    const r = (await h.start())!;
    await h.clock.advance(10 * MIN);
    await settle();
    expect(h.sink.text).toContain('WARNING: could not renew the job\'s AWS credentials (valid until 2026-12-07T03:20:00.000Z): STS AssumeRole on arn:aws:iam::123456789012:role/x: Throttling: Rate exceeded; trying again');
    expect(h.onMachine()).toEqual(first);
    await h.clock.advance(RETRY_FIRST_MS);
    await settle();
    expect(h.onMachine()).toEqual(later);
    expect(r.expired.aborted).toBe(false);
    r.stop();

    // Every renewal fails: the job goes on until its session expires, then stops as a system failure.
    const g = setup({ first: session(t0 + 20 * MIN), renewals: Array.from({ length: 50 }, () => new Error('STS AssumeRole on arn:aws:iam::123456789012:role/x: AccessDenied: not authorized')) });
    const r2 = (await g.start())!;
    await g.clock.advance(20 * MIN - 1);
    await settle();
    expect(r2.expired.aborted).toBe(false);
    await g.clock.advance(1);
    await settle();
    expect(r2.expired.aborted).toBe(true);
    const reason = r2.expired.reason as JobAbortReason;
    expect(reason).toBeInstanceOf(JobAbortReason);
    expect(reason.failureReason).toBe('runner_system_failure');
    expect(reason.message).toBe('the job\'s AWS credentials expired at 2026-12-07T03:20:00.000Z and could not be renewed: STS AssumeRole on arn:aws:iam::123456789012:role/x: AccessDenied: not authorized');
  });

  it('a continued job: masks the session its machine holds and renews at once (when it was issued is unknown); without one there is nothing to renew', async () => {
    const t0 = Date.UTC(2026, 11, 7, 3, 0, 0);
    const held = session(t0 + 40 * MIN);
    const next = session(t0 + 100 * MIN);
    const h = setup({ renewals: [next] });
    expect(await h.start()).toBeUndefined();
    mkdirSync(h.files.dir, { recursive: true });
    writeFileSync(h.files.session, processOutput(held), { mode: 0o600 });
    const r = (await h.start())!;
    expect(h.sink.secrets.slice(0, 3)).toEqual([held.accessKeyId, held.secretAccessKey, held.sessionToken]);
    await h.clock.advance(0);
    await settle();
    expect(h.onMachine()).toEqual(next);
    r.stop();
  });
});
