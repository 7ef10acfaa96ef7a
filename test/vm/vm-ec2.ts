// The fake EC2 (test/helpers/fake-ec2.ts) with real machines behind it: RunInstances boots a QEMU VM from
// exactly the `UserData` it was given, at the instance's PrivateIpAddress in the subnet's namespace (SSH on
// port 22); the instance is `running` once QEMU runs (as on EC2, the OS is still booting then), and goes
// `terminated` when the VM has powered off after TerminateInstances. A VM that dies on its own turns its
// instance `terminated` with a Server.InternalError reason, as a host failure would. One VM at a time is
// what a 2-core machine carries; the fleet config (maxMachines: 1) keeps it so.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { FakeEc2, type FakeInstance } from '../helpers/fake-ec2.js';
import type { GuestImage } from './guest-image.js';
import { QemuVm } from './qemu-vm.js';
import type { Subnet } from './subnet.js';

export interface VmEc2Options {
  image: GuestImage;
  subnet: Subnet;
  /** Each VM gets a directory here (overlay, seed, console log). */
  root: string;
  /** ACPI power-off grace before QEMU is killed. Default 60 s: 3-4 s alone, 16-20 s on a starved host. */
  powerOffGraceMs?: number;
  log?: (line: string) => void;
}

export class VmEc2 {
  readonly fake: FakeEc2;
  /** Every VM booted, by instance id, in launch order. */
  readonly vms = new Map<string, QemuVm>();
  /** Errors starting a VM (they also turn the instance `terminated`). */
  readonly bootErrors: Array<{ id: string; error: string }> = [];
  private readonly log: (line: string) => void;
  /** Set by killAll: a VM that ends now was killed by the clean-up, not lost on its own. */
  private cleaningUp = false;

  constructor(private readonly o: VmEc2Options) {
    this.log = o.log ?? (() => undefined);
    this.fake = new FakeEc2({
      privateIp: (n) => o.subnet.instanceIp(n),
      hooks: { onRun: (inst) => this.boot(inst), onTerminate: (inst) => this.powerOff(inst) },
    });
  }

  private boot(inst: FakeInstance): void {
    const vm = new QemuVm({
      id: inst.id,
      dir: join(this.o.root, inst.id),
      image: this.o.image,
      subnet: this.o.subnet,
      ip: inst.privateIp,
      userData: inst.userData,
      hostname: `ip-${inst.privateIp.replace(/\./g, '-')}`,
      onExit: (v) => {
        if (inst.state === 'terminated') return;
        if (this.cleaningUp) {
          this.fake.setState(inst.id, 'terminated', { Code: 'Server.InternalError', Message: 'killed by the test harness clean-up' });
          this.log(`${inst.id}: killed in the clean-up after a failure`);
        } else if (inst.state === 'shutting-down') {
          this.fake.setState(inst.id, 'terminated', { Code: 'Client.UserInitiatedShutdown', Message: 'Client.UserInitiatedShutdown: User initiated shutdown' });
          this.log(`${inst.id}: powered off (${v.timeline.exit})`);
        } else {
          this.fake.setState(inst.id, 'terminated', { Code: 'Server.InternalError', Message: `the VM stopped on its own (${v.timeline.exit}): ${v.qemuLog()}` });
          this.log(`${inst.id}: the VM stopped on its own`);
        }
      },
    });
    this.vms.set(inst.id, vm);
    mkdirSync(join(this.o.root, inst.id), { recursive: true });
    this.log(`${inst.id}: RunInstances → booting a VM at ${inst.privateIp}:22`);
    vm.start().then(
      () => {
        if (inst.state === 'pending') this.fake.setState(inst.id, 'running');
        this.log(`${inst.id}: QEMU running (pid ${vm.pid})`);
      },
      (e: Error) => {
        this.bootErrors.push({ id: inst.id, error: e.message });
        this.log(`${inst.id}: the VM did not start: ${e.message}`);
        void vm.kill();
        if (inst.state !== 'terminated') this.fake.setState(inst.id, 'terminated', { Code: 'Server.InternalError', Message: `the VM did not start: ${e.message}` });
      },
    );
  }

  private powerOff(inst: FakeInstance): void {
    const vm = this.vms.get(inst.id);
    this.log(`${inst.id}: TerminateInstances → ACPI power-off`);
    if (!vm || !vm.running) {
      this.fake.setState(inst.id, 'terminated');
      return;
    }
    void vm.powerOff(this.o.powerOffGraceMs ?? 60_000);
  }

  /** VMs whose QEMU process still runs. */
  running(): QemuVm[] {
    return [...this.vms.values()].filter((v) => v.running);
  }

  /** Clean-up after a failure: every VM killed, whatever its instance's state. */
  async killAll(): Promise<void> {
    this.cleaningUp = true;
    await Promise.all([...this.vms.values()].map((v) => v.kill()));
  }
}
