// Network aliases of a service container, by GitLab's rules (helpers/container/services): the image's
// repository without tag or digest with "/" → "__", and the RFC 1123 spelling with "/" → "-" when it
// differs; then the explicit aliases. Duplicates are skipped, first occurrence kept.

import { repositoryOf } from './image-ref.js';

export function derivedAliases(image: string): string[] {
  const repo = repositoryOf(image);
  if (repo === '') return [];
  return [...new Set([repo.replaceAll('/', '__'), repo.replaceAll('/', '-')])];
}

/** Every alias of a service: derived from the image, then the explicit ones (already split). */
export function serviceAliases(image: string, explicit: readonly string[]): string[] {
  return [...new Set([...derivedAliases(image), ...explicit.filter((a) => a !== '')])];
}
