// Docker image references: the repository without tag or digest, and the registry that serves it (for
// picking credentials). Docker's own rule: the first path component is a registry host when it contains
// a "." or a ":" or is "localhost"; otherwise the image lives on Docker Hub.

export const DOCKER_HUB = 'docker.io';
/** The key Docker clients use for Docker Hub in config.json `auths`. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** `reg.io:5000/grp/img:1.2@sha256:…` → `reg.io:5000/grp/img`. */
export function repositoryOf(image: string): string {
  let s = image;
  const at = s.indexOf('@');
  if (at >= 0) s = s.slice(0, at);
  const colon = s.lastIndexOf(':');
  if (colon > s.lastIndexOf('/')) s = s.slice(0, colon);
  return s;
}

/** The registry host of an image (`docker.io` for Docker Hub images). */
export function registryOf(image: string): string {
  const repo = repositoryOf(image);
  const slash = repo.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = repo.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? normalizeRegistry(first) : DOCKER_HUB;
}

/** A registry as written in credentials or config.json (`https://reg.io/v2/`, `reg.io`) → `reg.io`;
 *  every spelling of Docker Hub → `docker.io`. */
export function normalizeRegistry(registry: string): string {
  const host = registry
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return ['index.docker.io', 'registry-1.docker.io', 'docker.io', 'registry.hub.docker.com'].includes(host) ? DOCKER_HUB : host;
}

/** The config.json `auths` key for a normalized registry. */
export function authKeyOf(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : registry;
}
