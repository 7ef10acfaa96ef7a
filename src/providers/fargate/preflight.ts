// What a fargate executor needs before it takes jobs: credentials and region that reach ECS, and the
// cluster (one ListTasks on it, which the provider needs anyway to find its tasks). RunTask and the task
// definitions are not tried here: a dry run does not exist for them, and registering one would leave a
// revision behind.

import { ListTasksCommand, type ECSClient } from '@aws-sdk/client-ecs';

import type { CheckResult } from '../../core/preflight.js';
import type { FargateProviderConfig } from '../../core/provider-config.js';
import { classifyEcsError } from './classify-error.js';

export async function fargatePreflight(o: { executor: string; config: FargateProviderConfig; ecs: ECSClient; timeoutMs?: number }): Promise<CheckResult[]> {
  const target = `cluster ${o.config.cluster}`;
  try {
    await o.ecs.send(new ListTasksCommand({ cluster: o.config.cluster, maxResults: 1 }), { abortSignal: AbortSignal.timeout(o.timeoutMs ?? 20_000) });
    return [{ executor: o.executor, check: 'ecs-cluster', target, status: 'pass', message: 'ListTasks answered' }];
  } catch (e) {
    const c = classifyEcsError(e);
    return [{ executor: o.executor, check: 'ecs-cluster', target, status: 'fail', code: c.code, message: c.message, ...(c.kind === 'throttled' || c.kind === 'transient' ? { retryable: true } : {}) }];
  }
}
