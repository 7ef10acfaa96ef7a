// Who this coordinator is, to GitLab and on its machines (docs/gitlab-protocol.md §1). gitlab-runner derives
// its system_id from the host's machine-id or a file on disk; a Fargate task has neither that outlives it,
// so fleetrunner derives both ids from its configuration: every task of one deployment is the same runner
// manager in GitLab and owns the same machines.

import { createHmac } from 'node:crypto';

const SYSTEM_ID = /^[sr]_[0-9a-zA-Z]{12}$/;

export function isValidSystemId(id: string): boolean {
  return SYSTEM_ID.test(id);
}

export interface DeploymentIdentity {
  /** Sent to GitLab on verify, jobs/request and DELETE /runners/managers: `s_` + 12 hex. */
  systemId: string;
  /** The `coordinator` ownership tag on machines: `<fleet>-` + 12 hex. */
  coordinatorId: string;
}

/**
 * The same for every process of one deployment (every Fargate task of one ECS service, whatever host it
 * lands on), different for another fleet name, GitLab or runner token. Both ids come from an HMAC keyed
 * with the configured token, so neither reveals it (and a rotated token does not change them).
 */
export function deploymentIdentity(o: { fleet: string; gitlabUrl: string; token: string }): DeploymentIdentity {
  const mac = createHmac('sha256', o.token).update(`fleetrunner deployment\n${o.fleet}\n${o.gitlabUrl}`).digest('hex');
  return { systemId: `s_${mac.slice(0, 12)}`, coordinatorId: `${o.fleet}-${mac.slice(12, 24)}` };
}

/**
 * The deployment's machine key secret (32 bytes): what each EC2 instance's SSH client key is derived from
 * (providers/ec2/machine-identity.ts), so every task of the deployment can reach every instance with
 * nothing stored. Keyed with the configured runner token like the identity, under another label, so it is
 * independent of the ids it sits beside. Never logged. A new token is a new deployment: the instances of
 * the old one are then unreachable, as they are already not owned (another coordinator tag).
 */
export function deploymentKeySecret(o: { fleet: string; gitlabUrl: string; token: string }): Buffer {
  return createHmac('sha256', o.token).update(`fleetrunner machine keys v1\n${o.fleet}\n${o.gitlabUrl}`).digest();
}
