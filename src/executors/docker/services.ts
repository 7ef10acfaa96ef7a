// Waiting for service containers, as gitlab-runner does: every exposed TCP port of every service must
// accept a connection within the timeout; a service that does not is a warning with its logs, not a
// failure. The probe runs in the machine's bash (/dev/tcp to the container's address on the job
// network), so no probe image has to be pulled.

import { shellQuote } from '../remote-shell.js';
import type { TraceWriter } from '../trace-lines.js';
import { CapturedOutput, type MachineShell } from './machine-shell.js';
import { PrepareStopped } from './image-pull.js';

export interface StartedService {
  /** Container name. */
  name: string;
  /** The image as the job named it, for messages. */
  image: string;
}

interface Target {
  name: string;
  image: string;
  ip: string;
  ports: number[];
}

/** Exposed TCP ports and the address on `network` of each service. */
async function targets(shell: MachineShell, services: readonly StartedService[], network: string): Promise<Target[]> {
  const out: Target[] = [];
  for (const s of services) {
    const format = `{{range $p, $v := .Config.ExposedPorts}}{{$p}} {{end}}|{{with index .NetworkSettings.Networks ${JSON.stringify(network)}}}{{.IPAddress}}{{end}}`;
    const r = await shell.exec(`docker inspect --format ${shellQuote(format)} ${shellQuote(s.name)}`);
    if (r.exitCode !== 0) {
      out.push({ ...s, ip: '', ports: [] });
      continue;
    }
    const [ports = '', ip = ''] = r.stdout.trim().split('|');
    const tcp = ports
      .split(/\s+/)
      .filter((p) => /^\d+\/tcp$/.test(p))
      .map((p) => Number(p.split('/')[0]));
    out.push({ ...s, ip: ip.trim(), ports: tcp });
  }
  return out;
}

/** The probe: a service is up once any of its exposed ports accepts a connection (dind exposes 2375 and
 *  2376 but listens on one). Prints "ok NAME", "exited NAME" or "timeout NAME" per service, in parallel. */
export function waitScript(targets: ReadonlyArray<{ name: string; ip: string; ports: readonly number[] }>, timeoutS: number): string {
  const lines = [
    `deadline=$((SECONDS + ${Math.max(1, Math.ceil(timeoutS))}))`,
    '_fr_wait() {',
    '  local name=$1 ip=$2 port; shift 2',
    '  while :; do',
    '    for port in "$@"; do',
    `      if timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$ip" "$port" 2>/dev/null; then echo "ok $name"; return; fi`,
    '    done',
    `    if [ "$(docker inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then echo "exited $name"; return; fi`,
    '    if [ "$SECONDS" -ge "$deadline" ]; then echo "timeout $name"; return; fi',
    '    sleep 0.5',
    '  done',
    '}',
  ];
  for (const t of targets) lines.push(`_fr_wait ${[t.name, t.ip, ...t.ports.map(String)].map(shellQuote).join(' ')} &`);
  lines.push('wait');
  return lines.join('\n');
}

export async function waitForServices(
  shell: MachineShell,
  trace: TraceWriter,
  services: readonly StartedService[],
  network: string,
  timeoutMs: number,
  stop: AbortSignal,
): Promise<void> {
  if (services.length === 0 || timeoutMs <= 0) return;
  const all = await targets(shell, services, network);
  const probed = all.filter((t) => t.ports.length > 0 && t.ip !== '');
  if (probed.length === 0) return;
  trace.line(`Waiting for services to be up and running (timeout ${Math.round(timeoutMs / 1000)} seconds)...`);
  const out = new CapturedOutput();
  await shell.run(waitScript(probed, timeoutMs / 1000), out, stop, 'wait-services');
  if (stop.aborted) throw new PrepareStopped();
  const states = new Map<string, string>();
  for (const line of out.toString().split('\n')) {
    const [state, name] = line.trim().split(' ');
    if (state && name) states.set(name, state);
  }
  for (const t of probed) {
    const state = states.get(t.name);
    const ports = t.ports.map((p) => `${p}/tcp`).join(', ');
    const problem =
      state === 'ok' ? '' : state === 'exited' ? `service "${t.name}" is not running` : `service "${t.name}" timeout (no answer on ${ports})`;
    if (problem === '') continue;
    const logs = await shell.exec(`docker logs --tail 40 ${shellQuote(t.name)} 2>&1`);
    trace.warning(`Service ${t.image} (${t.name}) probably didn't start properly.`);
    trace.line('');
    trace.line('Health check error:');
    trace.line(problem);
    trace.line('');
    trace.line('Service container logs:');
    const text = logs.stdout.trimEnd();
    if (text !== '') trace.line(text);
    trace.line('');
    trace.line('*********');
  }
}
