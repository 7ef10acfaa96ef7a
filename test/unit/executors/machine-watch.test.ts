import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../../src/core/logger.js';
import { MachineWatch, heartbeatCommand, parseInterruption, watchCommand } from '../../../src/executors/machine-watch.js';
import type { SshConnection } from '../../../src/executors/ssh-connection.js';
import { settle, StepClock } from '../../helpers/step-clock.js';

describe('machine watch', () => {
  it.each([
    ['', undefined],
    ['\n', undefined],
    ['{"action":"terminate","time":"2026-12-06T22:10:00Z"}\n', { action: 'terminate', time: '2026-12-06T22:10:00Z' }],
    ['{"action":"stop","time":""}', { action: 'stop' }],
    ['{"action":"x y","time":"$(reboot)"}', { action: 'unknown' }],
    ['half-written', { action: 'unknown' }],
  ])('reads %j as %j', (text, notice) => {
    expect(parseInterruption(text)).toEqual(notice);
  });

  it('touches the heartbeat and reads the notice in one command, quoted', () => {
    expect(heartbeatCommand("/var/lib/it's/")).toBe(": > '/var/lib/it'\\''s/heartbeat'");
    expect(watchCommand('/var/lib/fleetrunner')).toBe(
      ": > '/var/lib/fleetrunner/heartbeat' 2>/dev/null; [ ! -e '/var/lib/fleetrunner/interruption' ] || cat -- '/var/lib/fleetrunner/interruption' 2>/dev/null; :",
    );
  });
});

describe('MachineWatch across a reconnect', () => {
  /** A connection that answers the watch command with `notice` and counts the calls. */
  function fakeConn(notice = '') {
    const c = { lost: undefined as Error | undefined, calls: 0, control: async () => (c.calls++, notice) };
    return c;
  }

  it('skips a dropped connection and goes on through the one the job reconnected with', async () => {
    const clock = new StepClock(0);
    const first = fakeConn();
    const watch = new MachineWatch(first as unknown as SshConnection, '/state', { clock, logger: silentLogger, intervalMs: 1_000 });
    await settle();
    expect(first.calls).toBe(1);
    first.lost = new Error('connection reset');
    await clock.advance(1_000);
    await clock.advance(1_000);
    expect(first.calls).toBe(1);
    const second = fakeConn('{"action":"terminate","time":"2026-12-07T01:00:00Z"}');
    watch.follow(second as unknown as SshConnection);
    await clock.advance(1_000);
    await settle();
    expect(second.calls).toBe(1);
    expect(watch.interrupted.aborted).toBe(true);
    watch.stop();
  });
});
