// The stage launcher's input run as the machine runs it (REMOTE_SHELL_COMMAND reading it whole on stdin),
// here on this host's bash: the records arrive byte for byte whatever they hold (job.json in place, the
// session record appended as a line), and the exit status is recorded before the launcher ends.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { exitFromFile, launcherInput } from '../../../src/executors/detached-stage.js';
import { parseSession, stageFiles } from '../../../src/executors/job-records.js';
import { REMOTE_SHELL_COMMAND, shellInput } from '../../../src/executors/remote-shell.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Runs REMOTE_SHELL_COMMAND here with `input` on stdin: `whole` appends the line that says it is whole
 *  (shellInput, as the executors send it); `delayMs` holds the input back that long; `env` adds to the
 *  environment; `outer` runs first in the login shell (bash) that sshd would start the command in. */
function launch(input: string, o: { whole?: boolean; delayMs?: number; env?: Record<string, string>; outer?: string } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `${o.outer ?? ''}${REMOTE_SHELL_COMMAND}`], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.resume();
    child.on('error', reject).on('close', (code) => resolve({ code, out }));
    const text = o.whole === false ? input : shellInput(input);
    if (o.delayMs) setTimeout(() => child.stdin.end(text), o.delayMs);
    else child.stdin.end(text);
  });
}

/** Everything a record may hold that a shell could take for its own. */
const AWKWARD = `{"a":"it's \\"quoted\\" \\\\ back\\\\slash","b":"$(touch /nonexistent) \`id\` $HOME \${x}","c":"!!\\n\\t"}\n\n\n'`;

describe('the stage launcher', () => {
  it('writes job.json and the session record byte for byte, and records the exit status', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fr-launcher-'));
    dirs.push(root);
    const jobDir = join(root, 'jobs', '7');
    const jobJson = AWKWARD + 'x'.repeat(200_000);
    const session = { seq: 1, name: AWKWARD, ends: [] };
    const { code, out } = await launch(launcherInput(stageFiles(jobDir, 1), 'echo "$((6 * 7))"; exit 3', { jobId: 7, jobJson, sessionJson: JSON.stringify(session) }));
    expect(code).toBe(3);
    expect(out).toBe('42\n');
    expect(readFileSync(join(jobDir, 'job.json'), 'utf8')).toBe(jobJson);
    expect(readFileSync(join(jobDir, 'session.json'), 'utf8')).toBe(`\n${JSON.stringify(session)}\n`);
    expect(parseSession(readFileSync(join(jobDir, 'session.json'), 'utf8'))).toEqual(session);
    expect(readFileSync(join(jobDir, '1.exit'), 'utf8')).toBe('3\n');
  });

  it("a later stage appends its session record only, and the first stage removes other jobs' records", async () => {
    const root = mkdtempSync(join(tmpdir(), 'fr-launcher-'));
    dirs.push(root);
    const old = join(root, 'jobs', '6');
    const jobDir = join(root, 'jobs', '7');
    const first = JSON.stringify({ seq: 1, name: 'get_sources', ends: [] });
    const second = JSON.stringify({ seq: 2, name: 'step_script', ends: [{ name: 'get_sources', kind: 'exited', exitCode: 0 }] });
    expect((await launch(launcherInput(stageFiles(old, 1), 'true', { jobId: 6, jobJson: '{}', sessionJson: first }))).code).toBe(0);
    expect((await launch(launcherInput(stageFiles(jobDir, 1), 'true', { jobId: 7, jobJson: '{"job":7}', sessionJson: first }))).code).toBe(0);
    expect(existsSync(old)).toBe(false);
    expect((await launch(launcherInput(stageFiles(jobDir, 2), 'exit 0', { jobId: 7, sessionJson: second }))).code).toBe(0);
    expect(readFileSync(join(jobDir, 'job.json'), 'utf8')).toBe('{"job":7}');
    expect(readFileSync(join(jobDir, 'session.json'), 'utf8')).toBe(`\n${first}\n\n${second}\n`);
    expect(parseSession(readFileSync(join(jobDir, 'session.json'), 'utf8'))).toEqual(JSON.parse(second));
    expect(readFileSync(join(jobDir, '2.exit'), 'utf8')).toBe('0\n');
  });

  it('runs a script only when it arrived whole, and waits for it however long an exported TMOUT says', async () => {
    // Hardened images export TMOUT (bash's read would time out with an empty script, which ran as success).
    const delayed = await launch('echo ran; exit 7', { delayMs: 1500, env: { TMOUT: '1' } });
    expect(delayed).toEqual({ code: 7, out: 'ran\n' });
    // Read-only too, as the login shell of a hardened image leaves it.
    const readonly = await launch('echo ran; exit 7', { delayMs: 1500, outer: 'readonly TMOUT=1; export TMOUT; ' });
    expect(readonly).toEqual({ code: 7, out: 'ran\n' });
    const cut = await launch('echo part1\necho part2', { whole: false });
    expect(cut).toEqual({ code: 255, out: '' });
    expect(await launch('', { whole: false })).toEqual({ code: 255, out: '' });
  });

  it('the stage is a bash of its own: $$ is its process group (what a stop kills), a top-level return fails', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fr-launcher-'));
    dirs.push(root);
    const f = stageFiles(join(root, 'jobs', '7'), 1);
    const session = JSON.stringify({ seq: 1, name: 'step_script', ends: [] });
    const own = await launch(launcherInput(f, 'echo "$$ $(cat ' + f.pid + ')"; kill -0 -- "-$$" && echo group', { jobId: 7, jobJson: '{}', sessionJson: session }));
    const [shellPid, recorded] = own.out.split('\n')[0]!.split(' ');
    expect(shellPid).toBe(recorded);
    expect(own.out).toContain('group\n');
    const f2 = stageFiles(join(root, 'jobs', '7'), 2);
    const ret = await launch(launcherInput(f2, 'set -e; return 0; echo after', { jobId: 7, sessionJson: session }));
    expect(ret.code).not.toBe(0);
    expect(ret.out).not.toContain('after');
  });

  it('a follower that finds the exit status being written (its file still empty) reads it again; never written, there is none', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fr-launcher-'));
    dirs.push(root);
    const f = stageFiles(join(root, 'jobs', '7'), 1);
    mkdirSync(f.dir, { recursive: true });
    const run = () =>
      new Promise<{ code: number | null; err: string }>((resolve, reject) => {
        const child = spawn('bash', ['-c', exitFromFile(f).join('\n')], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject).on('close', (code) => resolve({ code, err }));
      });
    writeFileSync(f.exit, ''); // the launcher has created it and not yet written it
    setTimeout(() => writeFileSync(f.exit, '5\n'), 40); // before the read again (0.1 s), after the first
    expect((await run()).code).toBe(5);
    writeFileSync(f.exit, ''); // a launcher killed between creating and writing it
    const none = await run();
    expect(none.code).toBe(255);
    expect(none.err).toContain('ended without recording an exit status');
  });
});
