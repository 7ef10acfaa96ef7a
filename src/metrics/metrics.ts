// Prometheus metrics (prom-client: the standard Node client, exposition format and registry done right).
// A registry per coordinator, no module singletons; served on metrics.listen when configured.

import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class FleetMetrics {
  readonly registry = new Registry();
  readonly jobsFinished = new Counter({ name: 'fleetrunner_jobs_finished_total', help: 'Jobs finished, by executor and outcome (success or failure reason)', labelNames: ['executor', 'outcome'], registers: [this.registry] });
  readonly jobsRunning = new Gauge({ name: 'fleetrunner_jobs_running', help: 'Jobs running now', registers: [this.registry] });
  readonly finalStatesPending = new Gauge({ name: 'fleetrunner_final_states_pending', help: 'Jobs whose final state is being delivered to GitLab (retried while GitLab is unavailable)', registers: [this.registry] });
  readonly jobRequests = new Counter({ name: 'fleetrunner_job_requests_total', help: 'POST /jobs/request calls, by runner (config runners:, default: gitlab.token) and result', labelNames: ['runner', 'result'], registers: [this.registry] });
  readonly machineAcquireSeconds = new Histogram({ name: 'fleetrunner_machine_acquire_seconds', help: 'Time to get a ready machine', labelNames: ['executor'], buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300], registers: [this.registry] });

  readonly machinesRemoved = new Counter({ name: 'fleetrunner_machines_removed_total', help: 'Machines the fleet decided to remove, by executor and reason (over_cap, idle_time, orphan, boot_timeout, max_uses, shutdown, …)', labelNames: ['executor', 'reason'], registers: [this.registry] });
  readonly machineInterruptions = new Counter({ name: 'fleetrunner_machine_interruptions_total', help: 'Interruption notices (EC2 spot) on machines running a job, by executor and action', labelNames: ['executor', 'action'], registers: [this.registry] });
  readonly spotBreakerOpen = new Gauge({ name: 'fleetrunner_spot_circuit_breaker_open', help: '1 while the executor launches on-demand only after repeated spot interruptions', labelNames: ['executor'], registers: [this.registry] });

  readonly machines = new Gauge({ name: 'fleetrunner_machines', help: 'Machines by executor and state (booting, idle, busy, removing)', labelNames: ['executor', 'state'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fleetrunner_' });
  }

  setMachines(executor: string, counts: { booting: number; idle: number; busy: number; removing: number }): void {
    for (const state of ['booting', 'idle', 'busy', 'removing'] as const) this.machines.set({ executor, state }, counts[state]);
  }

  /** Serves /metrics on "host:port" (or ":port"; port 0 picks a free one, see server.address()), and the
   *  given extra routes (the coordinator's /healthz and /readyz), each answering a status and a JSON body. */
  async serve(listen: string, routes: Readonly<Record<string, () => { status: number; body: string }>> = {}): Promise<Server> {
    const m = /^(.*):(\d+)$/.exec(listen);
    if (!m) throw new Error(`metrics.listen: expected host:port, got ${JSON.stringify(listen)}`);
    const server = createServer((req, res) => {
      const route = Object.hasOwn(routes, req.url ?? '') ? routes[req.url!] : undefined;
      if (route) {
        const { status, body } = route();
        res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(body);
        return;
      }
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found\n');
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'Content-Type': this.registry.contentType }).end(body),
        (e: Error) => res.writeHead(500).end(e.message),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(m[2]), m[1] || '0.0.0.0', () => resolve());
    });
    return server;
  }
}
