// The one boundary where POST /jobs/request's 201 body becomes a JobPayload. Rails renders unset values as
// `null` (not as missing keys), variable values may be `null`, lists may be `null` or `[]`, and older GitLab
// leaves keys out: every such shape is accepted here and turned into the default gitlab-runner uses
// (docs/gitlab-protocol.md §2.3). A body that is really malformed — a field of the wrong type — is refused
// with every problem named by its path, so the coordinator can fail that job with a clear trace line.
// Unknown keys are dropped: nothing downstream reads them.

import { z } from 'zod';
import { internName } from '../core/intern.js';
import { jobStub, type JobPayload } from '../core/job.js';

export { jobStub };

/** Wraps a schema so that `null` and a missing key both become `fallback`. */
function orDefault<T extends z.ZodType>(schema: T, fallback: () => z.output<T>) {
  return schema.nullish().transform((v): z.output<T> => (v === null || v === undefined ? fallback() : (v as z.output<T>)));
}

const str = orDefault(z.string(), () => '');
/** Unset when null, missing or empty. */
const optStr = z
  .string()
  .nullish()
  .transform((v) => (v ? v : undefined));
const strList = orDefault(z.array(z.string()), () => []);
const bool = orDefault(z.boolean(), () => false);
const optBool = z
  .boolean()
  .nullish()
  .transform((v) => v ?? undefined);
const optNumber = z
  .number()
  .nullish()
  .transform((v) => v ?? undefined);
// gitlab-runner reads these as plain strings: a value it does not know behaves as the default.
const when = z
  .string()
  .nullish()
  .transform((v): 'on_success' | 'on_failure' | 'always' => (v === 'on_failure' || v === 'always' ? v : 'on_success'));

const variable = z
  .object({
    key: z.string(),
    // Gitlab::Ci::Variables::Collection::Item passes nil on; gitlab-runner decodes it as "".
    value: str,
    public: optBool,
    masked: optBool,
    file: optBool,
    raw: optBool,
  })
  .transform((v) => {
    const out: JobPayload['variables'][number] = { key: internName(v.key), value: v.value };
    if (v.public !== undefined) out.public = v.public;
    if (v.masked !== undefined) out.masked = v.masked;
    if (v.file) out.file = true;
    if (v.raw) out.raw = true;
    return out;
  });
const variables = orDefault(z.array(variable), () => []);

const port = z.object({
  number: z.number().int(),
  protocol: str.transform((p) => p || 'http'),
  name: optStr,
});

// gitlab-runner reads executor_opts.docker.user as a string or an integer (StringOrInt64).
const dockerUser = z
  .union([z.string(), z.number().int()])
  .nullish()
  .transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v)));

const executorOpts = orDefault(
  z.object({
    docker: orDefault(z.object({ platform: optStr, user: dockerUser }), () => ({ platform: undefined, user: undefined })),
  }),
  () => ({ docker: { platform: undefined, user: undefined } }),
);

const image = z
  .object({
    name: str,
    alias: optStr,
    entrypoint: strList,
    command: strList,
    ports: orDefault(z.array(port), () => []),
    variables,
    pull_policy: strList,
    executor_opts: executorOpts,
  })
  .transform((i) => {
    const docker: JobPayload['services'][number]['executor_opts']['docker'] = {};
    if (i.executor_opts.docker.platform !== undefined) docker.platform = i.executor_opts.docker.platform;
    if (i.executor_opts.docker.user !== undefined) docker.user = i.executor_opts.docker.user;
    const out: JobPayload['services'][number] = {
      name: i.name,
      entrypoint: i.entrypoint,
      command: i.command,
      ports: i.ports.map((p) => (p.name === undefined ? { number: p.number, protocol: p.protocol } : { number: p.number, protocol: p.protocol, name: p.name })),
      variables: i.variables,
      pull_policy: i.pull_policy,
      executor_opts: { docker },
    };
    if (i.alias !== undefined) out.alias = i.alias;
    return out;
  });

const step = z.object({
  name: z.string(),
  script: strList,
  timeout: optNumber,
  when,
  allow_failure: bool,
});

const artifact = z.object({
  name: optStr,
  untracked: bool,
  paths: strList,
  exclude: strList,
  when,
  expire_in: optStr,
  artifact_type: str.transform((t) => t || 'archive'),
  artifact_format: str.transform((f) => f || 'zip'),
});

const cache = z.object({
  key: str,
  untracked: bool,
  paths: strList,
  policy: str,
  when,
  fallback_keys: strList,
});

const dependency = z.object({
  id: z.number().int(),
  name: str,
  token: str,
  artifacts_file: z
    .object({ filename: str, size: orDefault(z.number(), () => 0) })
    .nullish()
    .transform((f) => (f && f.filename ? f : undefined)),
});

const credential = z.object({ type: str, url: str, username: str, password: str });
const hook = z.object({ name: str, script: strList });

const list = <T extends z.ZodType>(item: T) => orDefault(z.array(item), () => []);

const payloadSchema = z.object({
  id: z.number().int().positive(),
  token: z.string().min(1),
  allow_git_fetch: bool,
  job_info: orDefault(
    z.object({
      id: optNumber,
      name: str,
      stage: str,
      project_id: orDefault(z.number().int(), () => 0),
      project_name: str,
      project_full_path: str,
      pipeline_id: optNumber,
    }),
    () => ({ id: undefined, name: '', stage: '', project_id: 0, project_name: '', project_full_path: '', pipeline_id: undefined }),
  ),
  git_info: z.object({
    repo_url: str,
    ref: str,
    sha: str,
    before_sha: str,
    // Only branch and tag matter to the fetch refspecs; anything else reads as unknown, not as an error.
    ref_type: z
      .string()
      .nullish()
      .transform((v) => (v === 'branch' || v === 'tag' ? v : undefined)),
    refspecs: strList,
    // Rails sends GIT_DEPTH.to_i, so "-1" arrives as -1; gitlab-runner shallow-fetches only above 0. A
    // depth of 0 or less is a full fetch, never a payload we cannot read.
    depth: orDefault(z.number().int(), () => 0).transform((d) => Math.max(0, d)),
    repo_object_format: z
      .string()
      .nullish()
      .transform((v): 'sha1' | 'sha256' => (v === 'sha256' ? 'sha256' : 'sha1')),
    protected: optBool,
  }),
  runner_info: orDefault(z.object({ timeout: optNumber, runner_session_url: optStr }), () => ({ timeout: undefined, runner_session_url: undefined })),
  variables,
  steps: list(step),
  image: image.nullish().transform((i) => (i && i.name ? i : undefined)),
  services: list(image).transform((s) => s.filter((i) => i.name !== '')),
  artifacts: list(artifact),
  cache: list(cache),
  credentials: list(credential),
  dependencies: list(dependency),
  features: orDefault(
    z.object({
      trace_sections: bool,
      failure_reasons: z
        .array(z.string())
        .nullish()
        .transform((v) => v?.map(internName)),
      token_mask_prefixes: strList,
    }),
    () => ({ trace_sections: false, failure_reasons: undefined, token_mask_prefixes: [] }),
  ),
  hooks: list(hook),
  run: optStr,
});

export type JobPayloadParse =
  | { ok: true; job: JobPayload }
  /** `id`/`token` are set when the body still says which job it is (so that job can be failed). */
  | { ok: false; problems: string[]; id?: number; token?: string; failureReasons?: string[] };

/** Reads a 201 body. Never throws. */
export function parseJobPayload(body: unknown): JobPayloadParse {
  const r = payloadSchema.safeParse(body);
  if (r.success) return { ok: true, job: dropUndefined(r.data) as JobPayload };
  const problems = r.error.issues.map((i) => `${pathOf(i.path)}: ${i.message}`);
  const out: JobPayloadParse = { ok: false, problems };
  if (isRecord(body)) {
    if (typeof body.id === 'number' && Number.isInteger(body.id) && body.id > 0) out.id = body.id;
    if (typeof body.token === 'string' && body.token !== '') out.token = body.token;
    const reasons = isRecord(body.features) ? body.features.failure_reasons : undefined;
    if (Array.isArray(reasons) && reasons.every((x) => typeof x === 'string')) out.failureReasons = reasons;
  }
  return out;
}

/** `["services", 0, "alias"]` → `services[0].alias`. */
function pathOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(body)';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Optional fields are absent rather than present-and-undefined (exactOptionalPropertyTypes). */
function dropUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropUndefined);
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = dropUndefined(x);
  return out;
}
