import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FleetMetrics } from '../../../src/metrics/metrics.js';

describe('Prometheus metrics endpoint', () => {
  it('serves the fleet metrics in the exposition format, and 404 elsewhere', async () => {
    const m = new FleetMetrics();
    m.jobsFinished.inc({ executor: 'local', outcome: 'script_failure' });
    m.jobRequests.inc({ runner: 'default', result: 'none' });
    m.jobRequests.inc({ runner: 'deploy', result: 'job' });
    m.machineAcquireSeconds.observe({ executor: 'local' }, 0.25);
    m.machinesRemoved.inc({ executor: 'local', reason: 'idle_time' });
    const server = await m.serve('127.0.0.1:0');
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const body = await res.text();
      expect(body).toContain('fleetrunner_jobs_finished_total{executor="local",outcome="script_failure"} 1');
      expect(body).toContain('fleetrunner_job_requests_total{runner="default",result="none"} 1');
      expect(body).toContain('fleetrunner_job_requests_total{runner="deploy",result="job"} 1');
      expect(body).toMatch(/fleetrunner_machine_acquire_seconds_bucket\{le="0.5",executor="local"\} 1/);
      expect(body).toContain('fleetrunner_jobs_running');
      expect(body).toContain('fleetrunner_machines_removed_total{executor="local",reason="idle_time"} 1');
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      server.close();
    }
  });

  it('refuses a listen address without a port', async () => {
    await expect(new FleetMetrics().serve('localhost')).rejects.toThrow(/metrics\.listen: expected host:port/);
  });
});
