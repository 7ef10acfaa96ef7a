// The RunInstances request for one machine in one pool. Pure: everything that matters for security and
// cost is decided here and asserted by the tests.

import type { BlockDeviceMapping, RunInstancesCommandInput, TagSpecification } from '@aws-sdk/client-ec2';

import type { Ec2ProviderConfig } from '../../core/provider-config.js';
import type { OwnershipTags } from '../../core/machine.js';
import { instanceTags } from './ownership-tags.js';
import type { Pool } from './placement.js';

export interface LaunchInputArgs {
  config: Ec2ProviderConfig;
  imageId: string;
  pool: Pool;
  owner: OwnershipTags;
  /** Value of the Name tag. */
  name: string;
  /** fleetrunner's per-instance tags (the key tags), on the instance only. */
  machineTags?: Readonly<Record<string, string>>;
  /** Rendered cloud-init (plain text; encoded here). */
  userData: string;
  /** Idempotency: the same token makes a retried call return the first call's instances, not more. */
  clientToken: string;
  /** Instances this call may launch (MinCount 1, MaxCount count): they share the user data. Default 1. */
  count?: number;
}

function rootVolume(c: Ec2ProviderConfig): BlockDeviceMapping {
  const v = c.rootVolume;
  return {
    DeviceName: v.deviceName,
    Ebs: {
      VolumeSize: v.sizeGb,
      VolumeType: v.type,
      Encrypted: v.encrypted,
      DeleteOnTermination: true, // the disk goes with the machine: nothing to leak
      ...(v.kmsKeyId !== undefined && { KmsKeyId: v.kmsKeyId }),
      ...(v.iops !== undefined && { Iops: v.iops }),
      ...(v.throughput !== undefined && { Throughput: v.throughput }),
    },
  };
}

/** "arn:aws:iam::123:instance-profile/x" is an ARN; anything else is a profile name. */
export function iamInstanceProfile(value: string): { Arn: string } | { Name: string } {
  return value.startsWith('arn:') ? { Arn: value } : { Name: value };
}

export function runInstancesInput(a: LaunchInputArgs): RunInstancesCommandInput {
  const c = a.config;
  const tags = instanceTags(a.owner, c.tags, a.name);
  const tagSpecs: TagSpecification[] = [
    { ResourceType: 'instance', Tags: instanceTags(a.owner, c.tags, a.name, a.machineTags) },
    { ResourceType: 'volume', Tags: tags },
  ];
  // The spot request is tagged too, so an orphaned request (should one ever exist) is traceable to us.
  if (a.pool.market === 'spot') tagSpecs.push({ ResourceType: 'spot-instances-request', Tags: tags });

  return {
    ImageId: a.imageId,
    InstanceType: a.pool.instanceType as RunInstancesCommandInput['InstanceType'],
    MinCount: 1,
    MaxCount: a.count ?? 1,
    ClientToken: a.clientToken,
    // Subnet, security groups and the public IP choice go on the primary interface: AssociatePublicIpAddress
    // exists only there, and false overrides a subnet that auto-assigns public IPs.
    NetworkInterfaces: [
      {
        DeviceIndex: 0,
        SubnetId: a.pool.subnet,
        AssociatePublicIpAddress: c.associatePublicIp,
        DeleteOnTermination: true,
        ...(c.securityGroups.length > 0 && { Groups: [...c.securityGroups] }),
      },
    ],
    // IMDSv2 only, and hop limit 1: the instance's own tools (the ECR credential helper) reach the role's
    // credentials, job containers (one network hop further) cannot.
    MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
    BlockDeviceMappings: [rootVolume(c)],
    ...(c.iamInstanceProfile !== undefined && { IamInstanceProfile: iamInstanceProfile(c.iamInstanceProfile) }),
    // `shutdown` inside the machine terminates it rather than leaving a stopped instance (and its EBS) behind.
    InstanceInitiatedShutdownBehavior: 'terminate',
    ...(a.pool.market === 'spot' && {
      // No MaxPrice: it defaults to the on-demand price, which is the most we would pay anyway.
      InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } },
    }),
    TagSpecifications: tagSpecs,
    UserData: Buffer.from(a.userData, 'utf8').toString('base64'),
  };
}
