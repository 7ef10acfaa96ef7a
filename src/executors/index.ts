export { SHELL_EXECUTOR_FEATURES, type ShellExecutorFeature } from './features.js';
export { JobAbortReason, abortOutcome, shutdownCutOff } from './job-abort.js';
export { runJobSession, type JobSessionOptions, type StageTransport } from './job-session.js';
export { runRemoteStage, type RemoteStageOptions, type StageExit } from './remote-shell.js';
export { ShellExecutor, type ShellExecutorOptions } from './shell-executor.js';
export type { SshExecutionOptions } from './ssh-execution-options.js';
export {
  HostKeyMismatchError,
  SshConnectError,
  SshConnection,
  connectSsh,
  type SshConnectOptions,
} from './ssh-connection.js';
export { ANSI, TraceWriter } from './trace-lines.js';
