// GitLab's two token models (docs/gitlab-protocol.md §1), told apart only by the literal `glrt-` prefix.

export type TokenModel =
  /** `glrt-…` made in GitLab's UI or by POST /user/runners: verified, never registered or deleted. */
  | 'runner-authentication'
  /** Legacy registration token: registers a runner at start and unregisters it at stop. */
  | 'registration';

export function isRunnerAuthenticationToken(token: string): boolean {
  return token.startsWith('glrt-');
}

export function tokenModel(configuredToken: string): TokenModel {
  return isRunnerAuthenticationToken(configuredToken) ? 'runner-authentication' : 'registration';
}
