// The container health check (docker/Dockerfile's HEALTHCHECK and the task definition's healthCheck):
// `node /app/dist/cli/healthcheck.js`. The image has no curl, so this is the probe: it asks the coordinator's
// /healthz (liveness, the exit status: 0 healthy, 1 not) and /readyz (readiness, printed beside it, so
// `docker inspect` and ECS's health output show both). It imports nothing but Node's own modules, so it
// starts in a few tens of milliseconds every 30 s.
//
// The address: FLEETRUNNER_HEALTH_URL (default http://127.0.0.1:9090, the stack's `metrics.listen: ":9090"`).

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DEFAULT_HEALTH_URL = 'http://127.0.0.1:9090';
const TIMEOUT_MS = 3_000;

export interface ProbeResult {
  ok: boolean;
  /** The answer's status and body, or why there was none. */
  text: string;
}

export async function probe(url: string, timeoutMs = TIMEOUT_MS): Promise<ProbeResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.text()).trim();
    return { ok: res.status === 200, text: `${res.status} ${body}` };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return { ok: false, text: `no answer from ${url}: ${err.cause?.code ?? err.name}: ${err.message}` };
  }
}

/** Probes both endpoints and prints one line; the exit code is liveness's. */
export async function runHealthcheck(env: Readonly<Record<string, string | undefined>>, out: (line: string) => void): Promise<number> {
  const base = (env.FLEETRUNNER_HEALTH_URL || DEFAULT_HEALTH_URL).replace(/\/+$/, '');
  const [live, ready] = await Promise.all([probe(`${base}/healthz`), probe(`${base}/readyz`)]);
  out(`live: ${live.ok ? 'yes' : 'no'} (${live.text}); ready: ${ready.ok ? 'yes' : 'no'} (${ready.text})\n`);
  return live.ok ? 0 : 1;
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  runHealthcheck(process.env, (line) => process.stdout.write(line)).then(
    (code) => process.exit(code),
    () => process.exit(1),
  );
}
