// Ownership tags on instances (and their volumes), written at launch and the only way instances are found
// again. Tag values hold names, never a token, a private key or anything about a job (the only other
// fleetrunner tags are the key tags of machine-identity.ts and the labels of instance-labels.ts).

import type { Filter, Tag } from '@aws-sdk/client-ec2';

import type { OwnershipTags } from '../../core/machine.js';

export const TAG_FLEET = 'fleetrunner:fleet';
export const TAG_EXECUTOR = 'fleetrunner:executor';
export const TAG_COORDINATOR = 'fleetrunner:coordinator';

/** User tags first, then Name and ownership, so a user tag can never disguise or steal an instance.
 *  `machineTags` are fleetrunner's own per-instance tags (the key tags of machine-identity.ts). */
export function instanceTags(owner: OwnershipTags, userTags: Readonly<Record<string, string>>, name: string, machineTags: Readonly<Record<string, string>> = {}): Tag[] {
  const merged: Record<string, string> = { ...userTags };
  for (const k of Object.keys(merged)) if (k.startsWith('fleetrunner:')) delete merged[k];
  for (const [k, v] of Object.entries(machineTags)) if (k.startsWith('fleetrunner:')) merged[k] = v;
  merged.Name = name;
  merged[TAG_FLEET] = owner.fleet;
  merged[TAG_EXECUTOR] = owner.executor;
  merged[TAG_COORDINATOR] = owner.coordinator;
  return Object.entries(merged).map(([Key, Value]) => ({ Key, Value }));
}

export function ownershipFilters(f: Partial<OwnershipTags> & Pick<OwnershipTags, 'fleet'>): Filter[] {
  const filters: Filter[] = [{ Name: `tag:${TAG_FLEET}`, Values: [f.fleet] }];
  if (f.executor !== undefined) filters.push({ Name: `tag:${TAG_EXECUTOR}`, Values: [f.executor] });
  if (f.coordinator !== undefined) filters.push({ Name: `tag:${TAG_COORDINATOR}`, Values: [f.coordinator] });
  return filters;
}

/** The ownership tags an instance carries, or undefined when one is missing (not ours to manage). */
export function ownershipOf(tags: readonly Tag[] | undefined): OwnershipTags | undefined {
  const get = (k: string) => tags?.find((t) => t.Key === k)?.Value;
  const fleet = get(TAG_FLEET);
  const executor = get(TAG_EXECUTOR);
  const coordinator = get(TAG_COORDINATOR);
  return fleet !== undefined && executor !== undefined && coordinator !== undefined ? { fleet, executor, coordinator } : undefined;
}

/** EC2's tag list as a map (the last value wins, as EC2 keeps one value per key anyway). */
export function tagMap(tags: readonly Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key !== undefined) out[t.Key] = t.Value ?? '';
  return out;
}
