// An in-memory CapacityProvider for unit tests of the fleet and the runner loop.
import { NotFoundError } from '../../src/core/errors.js';
import type { CapacityProvider, ConnectionInfo, CreateOptions, CreateResult, Machine, MachineLabels, OwnershipTags } from '../../src/core/machine.js';

export class MemoryProvider implements CapacityProvider {
  readonly name = 'memory';
  readonly machines = new Map<string, Machine>();
  created = 0;
  terminated: string[] = [];
  failNextCreates = 0;
  /** Errors the next creations report, one per machine asked for (typed errors: capacity, permanent, …). */
  createErrors: Error[] = [];
  /** The options of every create call, in order ({} when none were given). */
  createOptions: CreateOptions[] = [];
  /** createdAt of the machines it makes (the clock of the test, if it has one). */
  now: () => number = () => 0;
  private seq = 0;

  async create(count: number, tags: OwnershipTags, opts: CreateOptions = {}): Promise<CreateResult> {
    const machines: Machine[] = [];
    const errors: Error[] = [];
    this.createOptions.push(opts);
    for (let i = 0; i < count; i++) {
      const typed = this.createErrors.shift();
      if (typed) {
        errors.push(typed);
        continue;
      }
      if (this.failNextCreates > 0) {
        this.failNextCreates--;
        errors.push(new Error('simulated create failure'));
        continue;
      }
      const m: Machine = { id: `m-${++this.seq}`, executor: tags.executor, state: 'running', createdAt: this.now(), tags: { ...tags } };
      this.machines.set(m.id, m);
      this.created++;
      machines.push(m);
    }
    return { machines, errors };
  }

  async list(tags: Partial<OwnershipTags> & Pick<OwnershipTags, 'fleet'>): Promise<Machine[]> {
    return [...this.machines.values()].filter(
      (m) => m.tags.fleet === tags.fleet && (!tags.executor || m.tags.executor === tags.executor) && (!tags.coordinator || m.tags.coordinator === tags.coordinator),
    );
  }

  async waitReady(machine: Machine): Promise<ConnectionInfo> {
    return { host: machine.id, port: 22, username: 'u', privateKey: 'k', hostPublicKey: 'h', buildsDir: '/b', cacheDir: '/c', stateDir: '/s' };
  }

  async terminate(ids: string[]): Promise<{ errors: Error[] }> {
    for (const id of ids) {
      this.machines.delete(id);
      this.terminated.push(id);
    }
    return { errors: [] };
  }

  /** Every label written, in order, as `id:state[:job]`. */
  labelled: string[] = [];

  async label(id: string, labels: MachineLabels): Promise<void> {
    const m = this.machines.get(id);
    if (!m) throw new NotFoundError(`machine ${id} not found`);
    m.labels = labels;
    this.labelled.push(labels.state === 'busy' ? `${id}:busy:${labels.job}` : `${id}:idle`);
  }

  async shutdown(): Promise<void> {}
}
