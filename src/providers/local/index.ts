export { LocalProvider, type LocalNetwork, type LocalProviderOptions } from './local-provider.js';
export { namespacesSupported } from './netns.js';
export { MACHINE_ENV_KEY } from './sshd-config.js';
