// Plays the fake ECS's tasks with real containers on the local Docker engine, as Fargate would run their task
// definitions: a volume per task, the helper container (its entry point copies the agent bundle and exits
// 0), then the job container with the definition's entry point, `--init` (initProcessEnabled) and the
// RunTask overrides' environment. Host networking stands in for the task's ENI: the task's address is
// 127.0.0.1 and the agent listens on its configured port (so one task at a time: the e2e's maxMachines is 1).
// An image Docker cannot find stops the task as ECS does: TaskFailedToStart, CannotPullContainerError.

import { spawn } from 'node:child_process';

import type { TaskDefinition } from '@aws-sdk/client-ecs';

import type { FakeEcs, FakeEcsHooks, FakeTask } from './fake-ecs.js';

function run(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const c = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

export class DockerTasks implements FakeEcsHooks {
  readonly started: string[] = [];
  private ecs?: FakeEcs;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly prefix: string) {}

  attach(ecs: FakeEcs): void {
    this.ecs = ecs;
  }

  onRun(task: FakeTask, def: TaskDefinition): void {
    const p = this.start(task, def).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  onStop(task: FakeTask): void {
    const p = this.remove(task.id).then(() => {
      if (task.lastStatus !== 'STOPPED') task.lastStatus = 'STOPPED';
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Removes every container and volume this player made. */
  async cleanup(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    for (const id of this.started) await this.remove(id);
  }

  private names(id: string) {
    return { volume: `${this.prefix}-${id}`, helper: `${this.prefix}-helper-${id}`, job: `${this.prefix}-job-${id}` };
  }

  private async start(task: FakeTask, def: TaskDefinition): Promise<void> {
    const n = this.names(task.id);
    this.started.push(task.id);
    const [helper, job] = def.containerDefinitions!;
    const mount = job!.mountPoints![0]!;
    await run(['volume', 'create', n.volume]);
    const h = await run(['run', '--rm', '--name', n.helper, '-v', `${n.volume}:${mount.containerPath}`, '--entrypoint', helper!.entryPoint![0]!, helper!.image!, ...helper!.entryPoint!.slice(1)]);
    if (h.code !== 0) return this.fail(task, helper!.name!, h.out);
    const env = task.input.overrides?.containerOverrides?.find((o) => o.name === job!.name)?.environment ?? [];
    const j = await run([
      'run', '-d', '--name', n.job, '--init', '--network', 'host', '--pull', 'never',
      '-v', `${n.volume}:${mount.containerPath}`,
      ...env.flatMap((e) => ['-e', `${e.name}=${e.value}`]),
      '--entrypoint', job!.entryPoint![0]!, job!.image!, ...job!.entryPoint!.slice(1),
    ]);
    if (j.code !== 0) return this.fail(task, job!.name!, j.out);
    this.ecs?.setRunning(task.id, '127.0.0.1');
  }

  private fail(task: FakeTask, container: string, out: string): void {
    const pull = /No such image|Unable to find image|pull access denied|not found/i.test(out);
    const line = out.split('\n').find((l) => /error|no such image|unable to find/i.test(l))?.trim() ?? out.trim().split('\n')[0];
    const reason = pull ? `CannotPullContainerError: pull image manifest has been retried 1 time(s): ${line}` : `CannotStartContainerError: ${line}`;
    this.ecs?.failTask(task.id, { stopCode: 'TaskFailedToStart', stoppedReason: reason, container: { name: container, reason } });
  }

  private async remove(id: string): Promise<void> {
    const n = this.names(id);
    await run(['rm', '-f', n.job, n.helper]);
    await run(['volume', 'rm', '-f', n.volume]);
  }
}
