import { EventEmitter } from 'node:events';

import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../../src/core/logger.js';
import { MachineWatch, heartbeatCommand, noticeWaitCommand, parseInterruption, watchCommand } from '../../../src/executors/machine-watch.js';
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

  it('waits for the notice on the machine in a loop that ends with its input, quoted', () => {
    expect(noticeWaitCommand("/var/lib/it's")).toBe(
      `exec bash --noprofile --norc -c 'unset TMOUT; until [ -e '\\''/var/lib/it'\\''\\'\\'''\\''s/interruption'\\'' ]; do read -r -t 5 _; [ $? -gt 128 ] || exit 0; done; exec cat -- '\\''/var/lib/it'\\''\\'\\'''\\''s/interruption'\\'''`,
    );
  });

  it('touches the heartbeat and reads the notice in one command, quoted', () => {
    expect(heartbeatCommand("/var/lib/it's/")).toBe(": > '/var/lib/it'\\''s/heartbeat'");
    expect(watchCommand('/var/lib/fleetrunner')).toBe(
      ": > '/var/lib/fleetrunner/heartbeat' 2>/dev/null; [ ! -e '/var/lib/fleetrunner/interruption' ] || cat -- '/var/lib/fleetrunner/interruption' 2>/dev/null; :",
    );
  });
});

describe('MachineWatch', () => {
  /** A notice channel as ssh2 gives it: the test makes the machine print (notice) or the channel close. */
  class FakeChannel extends EventEmitter {
    readonly stderr = new EventEmitter();
    closed = false;
    close() {
      if (this.closed) return;
      this.closed = true;
      this.emit('exit', 0);
      this.emit('close');
    }
    /** The machine's loop found the notice: `cat` prints it and exits 0. */
    notice(text: string) {
      this.emit('data', Buffer.from(text));
      this.close();
    }
  }

  /** A connection that answers the heartbeat command with `notice`, counts the calls and hands out channels. */
  function fakeConn(notice = '') {
    const c = {
      lost: undefined as Error | undefined,
      calls: 0,
      channels: [] as FakeChannel[],
      commands: [] as string[],
      control: async () => (c.calls++, notice),
      exec: async (command: string) => {
        const ch = new FakeChannel();
        c.commands.push(command);
        c.channels.push(ch);
        return ch;
      },
    };
    return c;
  }
  const asConn = (c: ReturnType<typeof fakeConn>) => c as unknown as SshConnection;
  const TERMINATE = '{"action":"terminate","time":"2026-12-07T01:00:00Z"}\n';

  it('touches the heartbeat at once and then every interval, and opens one notice channel', async () => {
    const clock = new StepClock(0);
    const conn = fakeConn();
    const watch = new MachineWatch(asConn(conn), '/state', { clock, logger: silentLogger, heartbeatIntervalMs: 60_000 });
    await settle();
    expect(conn.calls).toBe(1);
    expect(conn.commands).toEqual([]);
    await clock.advance(5_000);
    expect(conn.commands).toEqual([noticeWaitCommand('/state')]);
    await clock.advance(54_000);
    expect(conn.calls).toBe(1);
    await clock.advance(1_000);
    expect(conn.calls).toBe(2);
    expect(conn.channels).toHaveLength(1);
    watch.stop();
    expect(conn.channels[0]!.closed).toBe(true);
    expect(watch.interrupted.aborted).toBe(false);
  });

  it('stops the job when the machine pushes a notice, between heartbeats', async () => {
    const clock = new StepClock(0);
    const conn = fakeConn();
    const watch = new MachineWatch(asConn(conn), '/state', { clock, logger: silentLogger });
    await clock.advance(5_000);
    conn.channels[0]!.notice(TERMINATE);
    await settle();
    expect(watch.interrupted.aborted).toBe(true);
    expect(watch.interrupted.reason).toMatchObject({ name: 'MachineInterruptedError', interruption: { action: 'terminate', time: '2026-12-07T01:00:00Z' } });
    watch.stop();
  });

  it('reads no notice from a channel that closed without its status (a connection cut mid-notice)', async () => {
    const clock = new StepClock(0);
    const conn = fakeConn();
    const watch = new MachineWatch(asConn(conn), '/state', { clock, logger: silentLogger });
    await clock.advance(5_000);
    const ch = conn.channels[0]!;
    ch.emit('data', Buffer.from('{"action":"termi'));
    ch.emit('close');
    await settle();
    expect(watch.interrupted.aborted).toBe(false);
    // The channel is opened again after a pause.
    await clock.advance(5_000);
    expect(conn.channels).toHaveLength(2);
    watch.stop();
  });

  it('skips a dropped connection and goes on through the one the job reconnected with', async () => {
    const clock = new StepClock(0);
    const first = fakeConn();
    const watch = new MachineWatch(asConn(first), '/state', { clock, logger: silentLogger, heartbeatIntervalMs: 5_000 });
    await clock.advance(5_000);
    expect(first.calls).toBe(2);
    first.lost = new Error('connection reset');
    first.channels[0]!.emit('close');
    await clock.advance(5_000);
    await clock.advance(5_000);
    expect(first.calls).toBe(2);
    expect(first.channels).toHaveLength(1);
    const second = fakeConn();
    watch.follow(asConn(second));
    await settle();
    expect(second.channels).toHaveLength(1);
    second.channels[0]!.notice(TERMINATE);
    await settle();
    expect(watch.interrupted.aborted).toBe(true);
    watch.stop();
  });

  it('moves its notice channel to the new connection at once when the job reconnects', async () => {
    const clock = new StepClock(0);
    const first = fakeConn();
    const watch = new MachineWatch(asConn(first), '/state', { clock, logger: silentLogger });
    await clock.advance(5_000);
    const second = fakeConn();
    watch.follow(asConn(second));
    await settle();
    expect(first.channels[0]!.closed).toBe(true);
    expect(second.channels).toHaveLength(1);
    watch.stop();
    expect(second.channels[0]!.closed).toBe(true);
  });

  it('sees a notice through the heartbeat too (one that came before the channel opened), and opens no channel', async () => {
    const clock = new StepClock(0);
    const conn = fakeConn(TERMINATE);
    const watch = new MachineWatch(asConn(conn), '/state', { clock, logger: silentLogger });
    await settle();
    expect(watch.interrupted.aborted).toBe(true);
    await clock.advance(5_000);
    expect(conn.channels).toEqual([]);
    watch.stop();
  });

  it('opens no notice channel for a job that ended within the first look', async () => {
    const clock = new StepClock(0);
    const conn = fakeConn();
    const watch = new MachineWatch(asConn(conn), '/state', { clock, logger: silentLogger });
    await clock.advance(4_000);
    watch.stop();
    await clock.advance(5_000);
    expect(conn.channels).toEqual([]);
  });
});
