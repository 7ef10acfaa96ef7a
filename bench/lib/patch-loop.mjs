// The trace-e2e bench's delivery floor, in a process of its own (as the coordinator is): takes one job from
// the fake GitLab with the runner token it is given, acknowledges it, PATCHes a file's bytes in 1 MiB pieces
// back to back through the coordinator's own GitLab client, ends the job, and prints the PATCHes' seconds.
// argv: GitLab URL, runner token, file.
import { readFileSync } from 'node:fs';
import { createRunnerApi } from '../../dist/gitlab/index.js';
import { systemClock } from '../../dist/core/index.js';

const [url, token, file] = process.argv.slice(2);
const bytes = readFileSync(file);
const api = createRunnerApi({ url, userAgent: 'fleetrunner bench', clock: systemClock });
const features = { trace_checksum: true, cancelable: true, cancel_gracefully: true, trace_size: true, trace_reset: true };
const r = await api.requestJob({ token, systemId: 's_0123456789ab', info: { features } });
if (r.kind !== 'job') throw new Error(`patch-loop: no job (${r.kind})`);
const { id, token: jobToken } = r.job;
await api.updateJob(id, jobToken, { state: 'running' });
const piece = 1024 * 1024;
const t0 = process.hrtime.bigint();
for (let at = 0; at < bytes.length; at += piece) {
  const res = await api.patchTrace(id, jobToken, at, bytes.subarray(at, Math.min(bytes.length, at + piece)));
  if (res.status !== 202) throw new Error(`patch-loop: PATCH at ${at} answered ${res.status}`);
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const { crc32 } = await import('node:zlib');
const checksum = `crc32:${crc32(bytes).toString(16).padStart(8, '0')}`;
const done = await api.updateJob(id, jobToken, { state: 'success', checksum, output: { checksum, bytesize: bytes.length } });
if (done.status !== 200) throw new Error(`patch-loop: final PUT answered ${done.status}`);
process.stdout.write(JSON.stringify({ seconds, patches: Math.ceil(bytes.length / piece) }) + '\n');
