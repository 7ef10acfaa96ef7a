// The runner `info` object (sent on register, verify, jobs/request and every job PUT) and the User-Agent.
// GitLab stores these per runner manager and shows them in the runners UI.

import type { FeatureMap } from './features.js';

export interface RunnerInfo {
  name: string;
  version: string;
  revision: string;
  platform: string;
  architecture: string;
  /** Omitted on register (no executor context there). */
  executor?: string;
  shell?: string;
  features: Partial<FeatureMap>;
  config: { gpus?: string };
  labels: Record<string, string>;
}

export interface RunnerInfoParams {
  /** Shown by GitLab as the runner's name/version. Default "fleetrunner": we do not pretend to be
   *  gitlab-runner, the feature map is what GitLab's behaviour depends on. */
  name?: string;
  version: string;
  revision?: string;
  /** Node's `process.platform` ("linux"); GOOS uses the same words for the platforms we run on. */
  platform: string;
  /** Node's `process.arch` ("x64"); mapped to GOARCH ("amd64") as GitLab expects. */
  arch: string;
  executor?: string;
  shell?: string;
  features: Partial<FeatureMap>;
  labels?: Record<string, string>;
  gpus?: string;
}

const GOARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le' };

/** GOARCH name for a Node `process.arch`. */
export function goArch(nodeArch: string): string {
  return GOARCH[nodeArch] ?? nodeArch;
}

export function buildRunnerInfo(p: RunnerInfoParams): RunnerInfo {
  const info: RunnerInfo = {
    name: p.name ?? 'fleetrunner',
    version: p.version,
    revision: p.revision ?? 'unknown',
    platform: p.platform,
    architecture: goArch(p.arch),
    features: { ...p.features },
    config: p.gpus ? { gpus: p.gpus } : {},
    labels: { ...(p.labels ?? {}) },
  };
  if (p.executor) info.executor = p.executor;
  if (p.shell) info.shell = p.shell;
  return info;
}

/** The register-time info: no executor context, network features only (docs/gitlab-protocol.md §1). */
export function registrationInfo(info: RunnerInfo, networkFeatures: Partial<FeatureMap>): RunnerInfo {
  const { executor: _executor, shell: _shell, ...rest } = info;
  return { ...rest, features: { ...networkFeatures } };
}

export interface UserAgentParams {
  name?: string;
  version: string;
  /** Source branch or "unknown". */
  branch?: string;
  /** `process.version`, e.g. "v20.15.0". */
  nodeVersion: string;
  platform: string;
  arch: string;
}

/** `fleetrunner 0.1.0 (main; node v20.15.0; linux/amd64)`, gitlab-runner's layout with node in place of go. */
export function buildUserAgent(p: UserAgentParams): string {
  return `${p.name ?? 'fleetrunner'} ${p.version} (${p.branch ?? 'unknown'}; node ${p.nodeVersion}; ${p.platform}/${goArch(p.arch)})`;
}
