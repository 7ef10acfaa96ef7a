// Every ECS answer the fargate provider acts on is classified here, once (the AWS-wide codes as the ec2
// provider's table has them: throttling, 5xx and network faults), plus what is ECS's own:
//   RunTask failures[]   RESOURCE:ENI (no free address in the subnet) → capacity, scope subnet: next subnet;
//                        "Capacity is unavailable…" (FARGATE_SPOT or FARGATE has none in that AZ) → capacity,
//                        scope provider: next subnet or capacity provider; any other failure → permanent
//   StopTask             "The referenced task was not found" → not-found (stopping is idempotent)
//   ClientException, InvalidParameterException, ClusterNotFoundException, AccessDenied… → permanent

import { classifyEc2Error, type Ec2ErrorClass } from '../ec2/classify-error.js';

export type EcsErrorClass = Pick<Ec2ErrorClass, 'kind' | 'code' | 'message'>;

export function classifyEcsError(err: unknown): EcsErrorClass {
  const c = classifyEc2Error(err);
  if (c.kind === 'capacity') return { kind: 'permanent', code: c.code, message: c.message }; // EC2's codes are not ECS's
  if (c.code === 'InvalidParameterException' && /referenced task was not found/i.test(c.message)) return { kind: 'not-found', code: c.code, message: c.message };
  if (c.code === 'ServerException') return { kind: 'transient', code: c.code, message: c.message };
  return { kind: c.kind, code: c.code, message: c.message };
}

/** What one RunTask `failures[]` entry means for placement. */
export type RunFailure =
  | { kind: 'capacity'; scope: 'subnet' | 'provider'; reason: string }
  | { kind: 'permanent'; reason: string };

export function classifyRunFailure(f: { reason?: string; detail?: string }): RunFailure {
  const reason = [f.reason, f.detail].filter(Boolean).join(': ') || 'RunTask started no task and gave no reason';
  if (f.reason === 'RESOURCE:ENI' || /free (ip )?addresses|InsufficientFreeAddresses/i.test(reason)) return { kind: 'capacity', scope: 'subnet', reason };
  if (/capacity is unavailable|RESOURCE:FARGATE|no capacity/i.test(reason)) return { kind: 'capacity', scope: 'provider', reason };
  return { kind: 'permanent', reason };
}
