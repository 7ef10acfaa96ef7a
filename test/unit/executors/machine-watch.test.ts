import { describe, expect, it } from 'vitest';

import { heartbeatCommand, parseInterruption, watchCommand } from '../../../src/executors/machine-watch.js';

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
    expect(heartbeatCommand("/var/lib/it's/")).toBe("touch -- '/var/lib/it'\\''s/heartbeat'");
    expect(watchCommand('/var/lib/fleetrunner')).toBe("touch -- '/var/lib/fleetrunner/heartbeat' 2>/dev/null; cat -- '/var/lib/fleetrunner/interruption' 2>/dev/null; exit 0");
  });
});
