// Preflight checks: what an executor needs from the outside world (GitLab, AWS credentials, subnets, the AMI,
// the cache bucket, ECR, sshd), checked before it takes jobs (`fleetrunner run`) or on demand
// (`fleetrunner verify`). Types only: the checks live with what they check (providers/ec2/preflight.ts,
// providers/aws/preflight.ts, cli/preflight.ts), the gate that acts on them in fleet/executor-gate.ts.

/** `skip`: not checked (a check it depends on failed, or the caller may not look); never fails the run. */
export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  /** The executor's name; `gitlab` for the runner token check. */
  executor: string;
  /** What kind of check: `gitlab-token`, `aws-credentials`, `ami`, `security-groups`, `run-instances`, `s3-cache`, `ecr-login`, `sshd`. */
  check: string;
  /** What was checked: a region, an AMI id, `subnet × type (market)`, a bucket, registries, a path. Never a secret. */
  target: string;
  status: CheckStatus;
  /** AWS's error code (the SDK's error name, e.g. `UnauthorizedOperation`), `HTTP 403`, or a Node error code. */
  code?: string;
  /** One line from AWS / GitLab / us, without secrets. */
  message?: string;
  /** Set on failures that may pass on their own soon (throttling, 5xx, network, a timeout). */
  retryable?: boolean;
}

/** "run-instances subnet-0aaa1111 × c6i.xlarge (spot): UnauthorizedOperation: You are not authorized…" */
export function describeCheck(r: CheckResult): string {
  const detail = [r.code, r.message].filter((s) => s !== undefined && s !== '').join(': ');
  return `${r.check} ${r.target}${detail ? `: ${detail}` : ''}`;
}
