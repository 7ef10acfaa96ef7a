// Which pull policies apply to an image: the job's `pull_policy` if it gave one, else the executor's
// default, and every one of them must be in the executor's allowed list (gitlab-runner's
// allowed_pull_policies). The policies are tried in order until one yields the image.

import type { PullPolicy } from './options.js';

export const PULL_POLICIES: readonly PullPolicy[] = ['always', 'if-not-present', 'never'];

export type PullPolicyDecision = { ok: true; policies: PullPolicy[] } | { ok: false; message: string };

function isPullPolicy(p: string): p is PullPolicy {
  return (PULL_POLICIES as readonly string[]).includes(p);
}

export function resolvePullPolicies(
  requested: readonly string[] | undefined,
  config: { pullPolicy: PullPolicy; allowedPullPolicies: readonly PullPolicy[] },
): PullPolicyDecision {
  const fromJob = requested !== undefined && requested.length > 0;
  const wanted = fromJob ? [...new Set(requested.map((p) => p.trim().toLowerCase()))] : [config.pullPolicy];
  const unknown = wanted.filter((p) => !isPullPolicy(p));
  if (unknown.length > 0) {
    return { ok: false, message: `unsupported pull_policy ${list(unknown)}: expected always, if-not-present or never` };
  }
  const policies = wanted as PullPolicy[];
  const refused = policies.filter((p) => !config.allowedPullPolicies.includes(p));
  if (refused.length > 0) {
    const where = fromJob ? 'defined in the job' : "defined in the executor's config";
    return {
      ok: false,
      message: `pull_policy ${list(policies)} ${where} is not one of the allowed_pull_policies ${list(config.allowedPullPolicies)}`,
    };
  }
  return { ok: true, policies };
}

export function list(items: readonly string[]): string {
  return `[${items.join(' ')}]`;
}
