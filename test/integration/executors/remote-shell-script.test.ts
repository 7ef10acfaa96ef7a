// The stage preamble and the kill command are shell code: check them against a real bash.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { killCommand, stageInput } from '../../../src/executors/remote-shell.js';

const dir = mkdtempSync(join(tmpdir(), 'fr-remote-shell-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runStage(script: string, pidFile: string, makeDir?: string) {
  return spawnSync('setsid', ['-w', 'bash', '--noprofile', '--norc', '-s'], {
    input: stageInput(script, pidFile, makeDir),
    encoding: 'utf8',
  });
}

describe('stage preamble', () => {
  it('records the process group id before the script runs and passes the exit status on', () => {
    const pidFile = join(dir, 'a.pid');
    const r = runStage('echo "pgid=$(ps -o pgid= -p $$ | tr -d \' \') pid=$$"\nexit 5', pidFile);
    expect(r.status).toBe(5);
    const pid = readFileSync(pidFile, 'utf8').trim();
    expect(r.stdout.trim()).toBe(`pgid=${pid} pid=${pid}`);
  });

  it('runs scripts with quotes, heredocs and functions unchanged', () => {
    const script = [
      `f() { echo "it's \\"quoted\\" \${1}"; }`,
      'f arg',
      "cat <<'EOF'",
      '$NOT_EXPANDED',
      'EOF',
      'set -e',
      'false',
      'echo unreachable',
    ].join('\n');
    const r = runStage(script, join(dir, 'b.pid'));
    expect(r.stdout).toBe(`it's "quoted" arg\n$NOT_EXPANDED\n`);
    expect(r.status).toBe(1);
  });

  it('runs a script larger than a pipe buffer whole, multibyte text and backslashes as they are', () => {
    // Past 64 KiB bash keeps the here-document in a file rather than a pipe; `read -N` reads both in blocks.
    const lines = Array.from({ length: 12_000 }, (_, i) => `v${i}='héllo ✓ \\n ${i}'`);
    const script = [...lines, `printf '%s|%s\\n' "$v0" "$v11999"`, 'printf "%s\\n" "end\\\\"'].join('\n');
    expect(Buffer.byteLength(script)).toBeGreaterThan(200_000);
    const r = runStage(script, join(dir, 'big.pid'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('héllo ✓ \\n 0|héllo ✓ \\n 11999\nend\\\n');
    expect(r.status).toBe(0);
  });

  it('does not start the script when the stage was stopped before it began', () => {
    const pidFile = join(dir, 'c.pid');
    writeFileSync(`${pidFile}.cancel`, '');
    const r = runStage('echo ran', pidFile);
    expect(r.status).toBe(143);
    expect(r.stdout).toBe('');
  });

  it('the first stage makes the private run directory, and refuses one that exists already', () => {
    const runDir = join(dir, 'run-1');
    const r = runStage('echo ran', join(runDir, '1.pid'), runDir);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('ran\n');
    expect(statSync(runDir).mode & 0o777).toBe(0o700);
    const again = runStage('echo ran again', join(runDir, '2.pid'), runDir);
    expect(again.status).toBe(1);
    expect(again.stdout).toBe('');
  });

  it('a first stage stopped before it began: the kill command makes the directory for its marker, and the stage never runs', () => {
    const runDir = join(dir, 'run-2');
    const pidFile = join(runDir, '1.pid');
    const k = spawnSync('bash', ['-c', killCommand(pidFile, 200)], { encoding: 'utf8' });
    expect(k.status).toBe(0);
    expect(existsSync(`${pidFile}.cancel`)).toBe(true);
    const r = runStage('echo ran', pidFile, runDir);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
  });

  it('the kill command is a no-op when the stage never started, and leaves a cancel marker', () => {
    const pidFile = join(dir, 'd.pid');
    const r = spawnSync('bash', ['-c', killCommand(pidFile, 200)], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(existsSync(`${pidFile}.cancel`)).toBe(true);
  });
});
