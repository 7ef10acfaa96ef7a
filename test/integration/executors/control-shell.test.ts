// The connection's control shell over real SSH: housekeeping commands share one long-lived channel, in
// order, with their output and exit status framed; a command cannot read the shell's stdin; a shell that
// ends is replaced by the next command; a closed connection fails the command as a lost machine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger, systemClock } from '../../../src/core/index.js';
import { ControlShell } from '../../../src/executors/control-shell.js';
import { connectSsh, type SshConnection } from '../../../src/executors/ssh-connection.js';
import { startMachine, type TestMachine } from './harness.js';

let m: TestMachine;
let conn: SshConnection;
beforeAll(async () => {
  m = await startMachine();
  conn = await connectSsh(m.info, { connectTimeoutMs: 10_000, keepaliveIntervalMs: 1_000, keepaliveCountMax: 3, clock: systemClock, logger: silentLogger });
});
afterAll(async () => {
  conn?.close();
  await m?.dispose();
});

describe('control shell over SSH', () => {
  it('runs commands on one channel, in order, each with its own output', async () => {
    // $BASHPID is the process running the command: the control shell itself (a subshell would be a new one).
    const pids = await Promise.all(Array.from({ length: 20 }, (_, i) => conn.control(`printf '%s %s %s' ${i} "$$" "$BASHPID"`)));
    expect(pids.map((p) => Number(p.split(' ')[0]))).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // One shell for them all, and no process of their own: no channel, no shell and no fork per command.
    expect(new Set(pids.map((p) => p.split(' ')[1])).size).toBe(1);
    expect(pids.every((p) => p.split(' ')[1] === p.split(' ')[2])).toBe(true);
  });

  it('keeps output without a final newline, multi-line output and empty output apart', async () => {
    expect(await conn.control("printf 'a\\nb'")).toBe('a\nb');
    expect(await conn.control('true')).toBe('');
    expect(await conn.control("printf 'x\\n\\n'")).toBe('x\n\n');
  });

  it('rejects a failing command with its status, drops stderr, and goes on', async () => {
    await expect(conn.control('echo oops >&2; (exit 3)')).rejects.toThrow('housekeeping command failed (exit 3)');
    expect(await conn.control('echo next')).toBe('next\n');
  });

  it('a command cannot eat the next one: its stdin is /dev/null', async () => {
    expect(await conn.control('cat; echo read-nothing')).toBe('read-nothing\n');
    expect(await conn.control('echo after')).toBe('after\n');
  });

  it('a command that ends the shell fails, and the next command gets a new shell', async () => {
    const before = await conn.control('printf %s "$$"');
    await expect(conn.control('kill -9 $$')).rejects.toThrow('the control shell on the machine ended');
    const after = await conn.control('printf %s "$$"');
    expect(after).not.toBe(before);
  });

  it('a command past its deadline fails, its shell is given up, and the next command runs in a new shell', async () => {
    const shell = new ControlShell((c) => conn.exec(c), { timeoutMs: 500 });
    const first = await shell.run('printf %s "$$"');
    await expect(shell.run('sleep 5; echo too-late')).rejects.toThrow('housekeeping command still running after 1 s');
    const next = await shell.run('printf %s "$$"');
    expect(next).not.toBe(first);
    // Nothing of the abandoned command reaches a later one.
    await new Promise((r) => setTimeout(r, 200));
    expect(await shell.run('echo clean')).toBe('clean\n');
    shell.close();
    await expect(shell.run('true')).rejects.toThrow('the connection to the machine was closed');
  });

  it('closing the connection fails the command in flight', async () => {
    const other = await connectSsh(m.info, { connectTimeoutMs: 10_000, keepaliveIntervalMs: 1_000, keepaliveCountMax: 3, clock: systemClock, logger: silentLogger });
    expect(await other.control('echo up')).toBe('up\n');
    const sleeping = other.control('sleep 30');
    await new Promise((r) => setTimeout(r, 200));
    other.close();
    await expect(sleeping).rejects.toThrow('the control shell on the machine ended');
  });
});
