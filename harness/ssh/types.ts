/** How one server is reached over SSH (resolved from an inventory). */
export interface SshTarget {
  /** Inventory name, used in every message. */
  name: string;
  /** Address or DNS name as the previous hop (controller or gateway) sees it. */
  host: string;
  port: number;
  user: string;
  /** Private key file; absent means the agent only. */
  keyFile?: string;
  /** ssh-agent socket (SSH_AUTH_SOCK) to try as well. */
  agent?: string;
  /** Gateway reached first (ProxyJump); chains are allowed. */
  jump?: SshTarget;
}

export type HostKeyMode = 'strict' | 'accept-new';

/** Where host keys are checked and (accept-new) recorded. */
export interface HostKeyPolicy {
  mode: HostKeyMode;
  /** Read-only known_hosts files (e.g. ~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts). Missing files are skipped. */
  knownHostsFiles: string[];
  /** migbench's own known_hosts: read too, and the only file accept-new writes to. */
  ownKnownHosts: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status; null when the process died from a signal or the channel closed without one. */
  code: number | null;
  signal: string | null;
}

/** Short description of a target for messages: `r1-h1 (root@10.0.0.1:22 via gw)`. */
export function describeTarget(t: SshTarget): string {
  return `${t.name} (${t.user}@${t.host}:${t.port}${t.jump ? ` via ${t.jump.name}` : ''})`;
}
