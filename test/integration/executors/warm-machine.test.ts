// A machine in the idle pool has its connection held, its first stage shell and its control shell started
// before a job comes (MachineConnections.warm): the job's first stage and its machine watch open no
// channel. Real sshd; the channels opened are counted at SshConnection.exec.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { silentLogger, systemClock } from '../../../src/core/index.js';
import { CONTROL_SHELL_COMMAND } from '../../../src/executors/control-shell.js';
import { REMOTE_SHELL_COMMAND } from '../../../src/executors/remote-shell.js';
import { SshConnection, connectSsh } from '../../../src/executors/ssh-connection.js';
import { executorFor, makePlan, makeRun, startMachine, type TestMachine } from './harness.js';

let m: TestMachine;
beforeAll(async () => {
  m = await startMachine();
}, 60_000);
afterAll(async () => {
  await m?.dispose();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs one job (prepare, script, cleanup: three stages) and counts the channels opened for each command. */
async function channelsOfAJob(warm: boolean): Promise<{ stageShells: number; controlShells: number }> {
  const executor = executorFor(makePlan(m.info));
  if (warm) {
    await executor.warm(m.info, () => undefined);
    // The idle heartbeat's first look goes through the control shell: it is open once that has run.
    await new Promise((r) => setTimeout(r, 300));
  }
  const exec = vi.spyOn(SshConnection.prototype, 'exec');
  try {
    const run = makeRun();
    expect(await executor.run(m.info, run.ctx)).toEqual({ state: 'success' });
    const commands = exec.mock.calls.map((c) => c[0]);
    return { stageShells: commands.filter((c) => c === REMOTE_SHELL_COMMAND).length, controlShells: commands.filter((c) => c === CONTROL_SHELL_COMMAND).length };
  } finally {
    exec.mockRestore();
    executor.cool(m.info);
  }
}

describe('a warm machine', () => {
  it("gives the job its first stage shell and its control shell already started", async () => {
    const cold = await channelsOfAJob(false);
    const warm = await channelsOfAJob(true);
    expect(cold.controlShells).toBe(1);
    expect(warm.controlShells).toBe(0);
    expect(warm.stageShells).toBe(cold.stageShells - 1);
  });

  it('never hands out a shell opened ahead that has ended since', async () => {
    const conn = await connectSsh(m.info, { connectTimeoutMs: 10_000, clock: systemClock, logger: silentLogger });
    try {
      conn.openAhead('exit 0');
      for (let i = 0; i < 100; i++) await new Promise((r) => setTimeout(r, 10));
      expect(conn.takeAhead('exit 0')).toBeUndefined();
      conn.openAhead('exec cat');
      expect(conn.takeAhead('exec true')).toBeUndefined(); // another command's channel is not this one
      const ch = await conn.takeAhead('exec cat');
      expect(ch).toBeDefined();
      const echoed = new Promise<string>((resolve) => {
        let out = '';
        ch!.on('data', (d: Buffer) => (out += d.toString())).on('close', () => resolve(out));
      });
      ch!.end('still open\n');
      expect(await echoed).toBe('still open\n');
      expect(conn.takeAhead('exec cat')).toBeUndefined(); // handed over once
    } finally {
      conn.close();
    }
  });
});
