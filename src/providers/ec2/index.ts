export { Ec2Provider, type Ec2ProviderOptions } from './ec2-provider.js';
export { classifyEc2Error, type CapacityScope, type Ec2ErrorClass, type Ec2ErrorKind } from './classify-error.js';
export { defaultKeyPairGenerator, type KeyPair, type KeyPairGenerator } from './machine-keys.js';
export { Placement, type Market, type Pool } from './placement.js';
export { HostKeyNotPinnedError, sshReadinessProbe, type ReadinessProbe, type SshProbeOptions } from './ssh-probe.js';
export { TAG_COORDINATOR, TAG_EXECUTOR, TAG_FLEET } from './ownership-tags.js';
export { TAG_JOB, TAG_STATE } from './instance-labels.js';
export { TAG_HOST_KEY, TAG_KEY_NONCE, TAG_KEY_SEAL, type IdentityRefusal } from './machine-identity.js';
export { toMachineState } from './instance-state.js';
export {
  DEFAULT_USER_DATA_TEMPLATE,
  EC2_BUILDS_DIR,
  EC2_CACHE_DIR,
  readUserDataTemplate,
  renderUserData,
  renderUserDataForCli,
  type UserDataKeys,
} from './user-data.js';
