// The two requests the fargate provider makes of ECS, built from config and one job's task, nothing else.
//
// A task definition per (image, cpu, memory), two containers sharing the bind volume `fleetrunner`:
//   fleetrunner-helper  the helper image (fleetrunner's agent bundle); not essential; its entry point copies
//                       the bundle into /fleetrunner and exits 0
//   job                 the job's image as written, essential, started once the helper exited 0
//                       (an init reaps orphans)
//                       (dependsOn SUCCESS), its entry point replaced by the agent: an SSH server from the
//                       bundle (docs/architecture.md, "Fargate: driving any image")
// The task role is the executor's jobRole: the job's processes get it from the container credentials
// endpoint. Nothing secret is in the definition; the agent's host key and the client key it authorises reach
// the task as RunTask's container overrides.

import { createHash } from 'node:crypto';

import type { RegisterTaskDefinitionCommandInput, RunTaskCommandInput } from '@aws-sdk/client-ecs';

import { AGENT_ENTRYPOINT, BUNDLE_MOUNT, HELPER_ENTRYPOINT } from '../../core/agent-bundle.js';
import type { FargateCapacityProvider, FargateProviderConfig } from '../../core/provider-config.js';
import { HELPER_CONTAINER, JOB_CONTAINER } from './task-state.js';
import type { TaskSize } from '../../core/fargate-task-size.js';

export const AGENT_VOLUME = 'fleetrunner';
export const ENV_HOST_KEY = 'FLEETRUNNER_AGENT_HOST_KEY';
export const ENV_AUTHORIZED_KEY = 'FLEETRUNNER_AGENT_AUTHORIZED_KEY';
export const ENV_AGENT_PORT = 'FLEETRUNNER_AGENT_PORT';
/** The agent's watchdog (src/agent/ssh-agent.ts), as the EC2 instance agent's defaults: a task nobody
 *  holds any more ends by itself. */
export const AGENT_IDLE_TIMEOUT_S = 30 * 60;
export const AGENT_MAX_LIFETIME_S = 24 * 60 * 60;

export interface DefinitionKey {
  image: string;
  size: TaskSize;
}

/** The family: fleet and executor (hashed: family names are [A-Za-z0-9_-]) and the definition's content. */
export function familyOf(fleet: string, executor: string, key: DefinitionKey, c: FargateProviderConfig): string {
  const owner = createHash('sha256').update(`${fleet}\n${executor}`).digest('hex').slice(0, 10);
  const content = createHash('sha256')
    .update(JSON.stringify([key.image, key.size.cpu, key.size.memoryMiB, c.helperImage, c.executionRoleArn ?? '', c.jobRole ?? '', c.agentPort]))
    .digest('hex')
    .slice(0, 16);
  return `fleetrunner-${owner}-${content}`;
}

export function registerInput(family: string, key: DefinitionKey, c: FargateProviderConfig): RegisterTaskDefinitionCommandInput {
  const mount = { sourceVolume: AGENT_VOLUME, containerPath: BUNDLE_MOUNT, readOnly: false };
  return {
    family,
    requiresCompatibilities: ['FARGATE'],
    networkMode: 'awsvpc',
    cpu: String(key.size.cpu),
    memory: String(key.size.memoryMiB),
    ...(c.executionRoleArn ? { executionRoleArn: c.executionRoleArn } : {}),
    ...(c.jobRole ? { taskRoleArn: c.jobRole } : {}),
    volumes: [{ name: AGENT_VOLUME }],
    containerDefinitions: [
      { name: HELPER_CONTAINER, image: c.helperImage, essential: false, entryPoint: [...HELPER_ENTRYPOINT], command: [], mountPoints: [mount] },
      {
        name: JOB_CONTAINER,
        image: key.image,
        essential: true,
        entryPoint: [...AGENT_ENTRYPOINT],
        command: [],
        dependsOn: [{ containerName: HELPER_CONTAINER, condition: 'SUCCESS' }],
        mountPoints: [mount],
        portMappings: [{ containerPort: c.agentPort, protocol: 'tcp' }],
        // An init as PID 1 reaps the orphans of detached stages; the agent is its child.
        linuxParameters: { initProcessEnabled: true },
      },
    ],
    tags: Object.entries(c.tags).map(([key, value]) => ({ key, value })),
  };
}

export interface RunArgs {
  definitionArn: string;
  subnet: string;
  capacityProvider: FargateCapacityProvider;
  startedBy: string;
  tags: Record<string, string>;
  /** The agent's host private key and the client public key it authorises: container overrides. */
  hostPrivateKey: string;
  authorizedKey: string;
}

export function runTaskInput(a: RunArgs, c: FargateProviderConfig): RunTaskCommandInput {
  return {
    cluster: c.cluster,
    taskDefinition: a.definitionArn,
    count: 1,
    capacityProviderStrategy: [{ capacityProvider: a.capacityProvider, weight: 1 }],
    platformVersion: c.platformVersion,
    networkConfiguration: {
      awsvpcConfiguration: { subnets: [a.subnet], securityGroups: [...c.securityGroups], assignPublicIp: c.assignPublicIp ? 'ENABLED' : 'DISABLED' },
    },
    enableExecuteCommand: false,
    enableECSManagedTags: true,
    startedBy: a.startedBy,
    tags: Object.entries({ ...c.tags, ...a.tags }).map(([key, value]) => ({ key, value })),
    overrides: {
      ...(c.ephemeralStorageGb > 20 ? { ephemeralStorage: { sizeInGiB: c.ephemeralStorageGb } } : {}),
      containerOverrides: [
        {
          name: JOB_CONTAINER,
          environment: [
            { name: ENV_HOST_KEY, value: a.hostPrivateKey },
            { name: ENV_AUTHORIZED_KEY, value: a.authorizedKey },
            { name: ENV_AGENT_PORT, value: String(c.agentPort) },
            { name: 'FLEETRUNNER_AGENT_IDLE_TIMEOUT_S', value: String(AGENT_IDLE_TIMEOUT_S) },
            { name: 'FLEETRUNNER_AGENT_MAX_LIFETIME_S', value: String(AGENT_MAX_LIFETIME_S) },
          ],
        },
      ],
    },
  };
}

/** startedBy names the fleet (hashed: [A-Za-z0-9_/-], 128 at most), so ListTasks narrows to it. */
export function startedByOf(fleet: string): string {
  return `fleetrunner/${createHash('sha256').update(fleet).digest('hex').slice(0, 24)}`;
}
