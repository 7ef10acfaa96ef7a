// Joined predefined stages run in a real bash exactly as the stages one by one would: each its own
// section, the first failure ends the run with its status, nothing after it runs.
import { spawn, spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import type { Stage } from '../../../src/core/plan.js';
import { ShellWriter, joinStages } from '../../../src/jobs/index.js';

function stage(name: string, commands: string[]): Stage {
  const w = new ShellWriter();
  for (const c of commands) w.raw(c);
  return { name, phase: 'predefined', script: w.finish({ section: { name, header: `Doing ${name}` }, debugTrace: false }) };
}

function run(script: string) {
  const r = spawnSync('bash', ['--noprofile', '--norc', '-s'], { input: script, encoding: 'utf8' });
  // Section markers carry a timestamp: keep the name only.
  return { status: r.status, out: r.stdout.replace(/section_(start|end):\d+:(\w+)\r\x1b\[0K(\x1b\[36;1m[^\n]*)?/g, '[$1 $2]') };
}

describe('joinStages', () => {
  it('runs every stage in order, each in its own section, and exits 0', () => {
    const joined = joinStages([stage('prepare_script', ['echo one']), stage('get_sources', ['echo two'])]);
    expect(joined.name).toBe('prepare_script+get_sources');
    expect(joined.phase).toBe('predefined');
    const r = run(joined.script);
    expect(r.status).toBe(0);
    expect(r.out).toBe('[start prepare_script]\none\n[end prepare_script]\n[start get_sources]\ntwo\n[end get_sources]\n');
  });

  it('stops at the first failing stage with its exit status, closing its section', () => {
    const joined = joinStages([
      stage('prepare_script', ['echo one']),
      stage('get_sources', ['echo two', 'sh -c "exit 7"', 'echo not reached']),
      stage('restore_cache', ['echo three']),
    ]);
    const r = run(joined.script);
    expect(r.status).toBe(7);
    expect(r.out).toBe('[start prepare_script]\none\n[end prepare_script]\n[start get_sources]\ntwo\n[end get_sources]\n');
  });

  it('a variable or directory change in one stage does not leak into the next', () => {
    const joined = joinStages([stage('a', ['export LEAK=yes', 'cd /']), stage('b', ['echo "leak=${LEAK:-no} pwd=$PWD"'])]);
    const r = spawnSync('bash', ['--noprofile', '--norc', '-s'], { input: joined.script, encoding: 'utf8', cwd: '/tmp' });
    expect(r.stdout).toContain('leak=no pwd=/tmp');
  });

  it('runs stages written by ShellWriter in the joined shell itself: no subshell of their own', () => {
    const joined = joinStages([stage('a', ['true']), stage('b', ['true'])]);
    expect(joined.script.split('\n').filter((l) => l === '(')).toEqual([]);
    const other: Stage = { name: 'c', phase: 'predefined', script: 'echo other\n' };
    expect(run(joinStages([stage('a', ['echo a']), other]).script)).toEqual({ status: 0, out: '[start a]\na\n[end a]\nother\n' });
  });

  it('a stop (TERM to the process group) closes the running stage\'s section and runs nothing after it', async () => {
    const joined = joinStages([stage('a', ['echo one']), stage('b', ['echo two', 'sleep 30']), stage('c', ['echo three'])]);
    const child = spawn('bash', ['--noprofile', '--norc', '-s'], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    let out = '';
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('two\n')) process.kill(-child.pid!, 'SIGTERM');
    });
    child.stdin.end(joined.script);
    expect(await closed).toBe(1);
    const text = out.replace(/section_(start|end):\d+:(\w+)\r\x1b\[0K(\x1b\[36;1m[^\n]*)?/g, '[$1 $2]');
    expect(text).toBe('[start a]\none\n[end a]\n[start b]\ntwo\n[end b]\n');
  });

  it('one stage is returned as it is; stages of different phases are refused', () => {
    const one = stage('a', ['true']);
    expect(joinStages([one])).toBe(one);
    expect(() => joinStages([one, { ...stage('b', ['true']), phase: 'user' }])).toThrow(/different phases/);
  });
});
