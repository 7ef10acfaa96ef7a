// /healthz and /readyz on the metrics listener, and the container health check script against them.
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CoordinatorHealth } from '../../../src/cli/health.js';
import { runHealthcheck } from '../../../src/cli/healthcheck.js';
import { FleetMetrics } from '../../../src/metrics/metrics.js';
import { freeLoopbackPort } from '../../../src/providers/local/sshd-process.js';
import { StepClock } from '../../helpers/step-clock.js';

describe('health endpoints and the container health check', () => {
  it('serves liveness and readiness beside /metrics; the check exits by liveness and prints both', async () => {
    const clock = new StepClock();
    const health = new CoordinatorHealth(clock);
    const server = await new FleetMetrics().serve('127.0.0.1:0', health.routes());
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const lines: string[] = [];
      const check = () => runHealthcheck({ FLEETRUNNER_HEALTH_URL: base }, (l) => lines.push(l));

      // Waiting for the lease: alive, not ready.
      let res = await fetch(`${base}/readyz`);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toEqual({ status: 'fail', phase: 'waiting_for_lease' });
      expect(await check()).toBe(0);
      expect(lines.pop()).toBe('live: yes (200 {"status":"ok","phase":"waiting_for_lease"}); ready: no (503 {"status":"fail","phase":"waiting_for_lease"})\n');

      health.enter('running');
      health.onLoopWait({ kind: 'waiting_for_capacity' });
      expect(await check()).toBe(0);
      expect(lines.pop()).toMatch(/^live: yes .*; ready: yes \(200 \{"status":"ok","phase":"running","loop":"waiting_for_capacity"\}\)\n$/);

      // A stuck loop: the check fails, so Docker/ECS mark the container unhealthy.
      health.onLoopWait({ kind: 'requesting' });
      clock.jump(3_600_000);
      expect(await check()).toBe(1);
      expect(lines.pop()).toMatch(/^live: no \(503 \{"status":"fail","phase":"running","loop":"request_stuck","forS":3600\}\)/);
      res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
    } finally {
      server.close();
    }
  });

  it('fails with the address when nothing answers (metrics.listen unset or elsewhere)', async () => {
    const port = await freeLoopbackPort();
    const lines: string[] = [];
    expect(await runHealthcheck({ FLEETRUNNER_HEALTH_URL: `http://127.0.0.1:${port}/` }, (l) => lines.push(l))).toBe(1);
    expect(lines[0]).toContain(`live: no (no answer from http://127.0.0.1:${port}/healthz: ECONNREFUSED`);
  });
});
