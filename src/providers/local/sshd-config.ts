// The sshd_config of one local machine. Every session gets the machine's marker and temp dir in its
// environment: the marker lets terminate find processes that escaped their process group.
//
// sshd runs as root when the coordinator does, and lets only the machine's user in, with the machine's
// client key. StrictModes is off because machine dirs usually live under /tmp, which is world-writable (sticky),
// and sshd's check would refuse that; the provider instead keeps everything on the path to the
// authorized_keys file out of the job user's reach (root-owned, not writable by it; see MachineDir).

export const MACHINE_ENV_KEY = 'FLEETRUNNER_LOCAL_MACHINE';

export interface SshdConfigInput {
  listenAddress: string;
  port: number;
  hostKeyFile: string;
  authorizedKeysFile: string;
  username: string;
  machineId: string;
  tmpDir: string;
  /** $HOME of sessions: a fresh, empty home per machine instead of the host user's. */
  homeDir: string;
}

/** Marker entry ("KEY=value") present in the environment of every process a session starts. */
export function machineEnvEntry(machineId: string): string {
  return `${MACHINE_ENV_KEY}=${machineId}`;
}

function quote(value: string): string {
  if (/["\s]/.test(value)) throw new Error(`unsupported character in sshd_config value: ${value}`);
  return value;
}

export function renderSshdConfig(c: SshdConfigInput): string {
  return [
    `# fleetrunner local machine ${c.machineId}`,
    `ListenAddress ${c.listenAddress}`,
    `Port ${c.port}`,
    `HostKey ${quote(c.hostKeyFile)}`,
    `PidFile none`,
    `AuthorizedKeysFile ${quote(c.authorizedKeysFile)}`,
    `AllowUsers ${quote(c.username)}`,
    `PubkeyAuthentication yes`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `PermitRootLogin ${c.username === 'root' ? 'prohibit-password' : 'no'}`,
    `UsePAM no`,
    `StrictModes no`,
    `PermitUserEnvironment no`,
    `X11Forwarding no`,
    `PrintMotd no`,
    `UseDNS no`,
    // The coordinator may die without closing; sshd then drops its sessions.
    `ClientAliveInterval 15`,
    `ClientAliveCountMax 4`,
    `SetEnv ${machineEnvEntry(c.machineId)} TMPDIR=${quote(c.tmpDir)} HOME=${quote(c.homeDir)}`,
    `Subsystem sftp internal-sftp`,
    '',
  ].join('\n');
}
