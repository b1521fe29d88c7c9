/**
 * Who may do what over the control socket. Three levels:
 *  - `ping`: anyone who can connect (it tells `pmctl logs` whether a daemon runs);
 *  - reading (`status`): anyone who can connect, which the socket's mode/owner/group guard;
 *    when `sock_read_group` is set, only root, the daemon's uid and members of `sock_read_group`
 *    or `sock_group` (the socket's mode must then let them connect, e.g. 0666);
 *  - changing anything: root, the daemon's own uid, or members of `sock_group`.
 * Groups are the peer's primary and supplementary groups at connect time (SO_PEERCRED and
 * SO_PEERGROUPS; /proc/PID/status on kernels without SO_PEERGROUPS).
 */
import { readFileSync } from "node:fs";
import type { MasterConfig } from "../config/types.ts";
import { resolveGroup, resolveUser } from "../config/load.ts";
import { MUTATING, type Command, type Request } from "../control/protocol.ts";
import type { PeerCred } from "../linux/ffi.ts";
import { PmError } from "../util/errors.ts";
import type { SocketPermissions } from "../control/server.ts";

export function socketPermissions(master: MasterConfig): SocketPermissions {
  const perms: SocketPermissions = { mode: master.sockMode };
  if (master.sockOwner !== undefined) {
    const user = resolveUser(master.sockOwner);
    if (!user) throw new PmError("CONFIG_INVALID", `${master.file}: sock_owner: no user named '${master.sockOwner}'`);
    perms.uid = user.uid;
  }
  if (master.sockGroup !== undefined) {
    const group = resolveGroup(master.sockGroup);
    if (!group) throw new PmError("CONFIG_INVALID", `${master.file}: sock_group: no group named '${master.sockGroup}'`);
    perms.gid = group.gid;
  }
  if ((perms.uid !== undefined || perms.gid !== undefined) && process.getuid?.() !== 0) {
    throw new PmError("PERMISSION", `${master.file}: sock_owner/sock_group need root to apply (running as uid ${process.getuid?.()})`);
  }
  return perms;
}

function peerGroups(peer: PeerCred): Set<number> {
  const groups = new Set([peer.gid, ...(peer.groups ?? [])]);
  if (peer.groups !== undefined) return groups;
  try {
    const status = readFileSync(`/proc/${peer.pid}/status`, "utf8");
    const line = /^Groups:\s*(.*)$/m.exec(status);
    for (const g of (line?.[1] ?? "").split(/\s+/).filter(Boolean)) groups.add(Number(g));
  } catch { /* the client already exited: primary group only */ }
  return groups;
}

/** `uid 65534 (nobody) pid 1234`, for the log. */
export function describePeer(peer: PeerCred | null): string {
  if (peer === null) return "an unidentified client";
  const name = resolveUser(peer.uid)?.name;
  return `uid ${peer.uid}${name !== undefined ? ` (${name})` : ""} pid ${peer.pid}`;
}

/** Commands anyone who can connect may send. */
const OPEN: ReadonlySet<Command> = new Set(["ping"]);

export function authorize(req: Request, peer: PeerCred | null, master: MasterConfig): void {
  if (OPEN.has(req.cmd)) return;
  const mutating = MUTATING.has(req.cmd);
  if (!mutating && master.sockReadGroup === undefined) return; // the socket's permissions guard reading
  if (peer === null) throw new PmError("PERMISSION", `${req.cmd}: cannot identify the client (SO_PEERCRED failed); refused`);
  if (peer.uid === 0 || peer.uid === process.getuid?.()) return;
  let groups: Set<number> | undefined;
  const isMember = (group: string | undefined) => {
    if (group === undefined) return false;
    const gid = resolveGroup(group)?.gid;
    groups ??= peerGroups(peer);
    return gid !== undefined && groups.has(gid);
  };
  if (isMember(master.sockGroup)) return;
  if (!mutating && isMember(master.sockReadGroup)) return;
  const { sockGroup, sockReadGroup } = master;
  if (mutating) {
    throw new PmError("PERMISSION", `${req.cmd} refused for uid ${peer.uid}: changing services needs root${sockGroup !== undefined ? ` or membership of group '${sockGroup}'` : ""}`);
  }
  throw new PmError("PERMISSION", `${req.cmd} refused for uid ${peer.uid}: reading needs root or membership of group '${sockReadGroup}'${sockGroup !== undefined ? ` or '${sockGroup}'` : ""}`);
}

/** Settings that would not do what they seem to; the daemon logs each at start. */
export function accessWarnings(master: MasterConfig): string[] {
  const warnings: string[] = [];
  if (master.sockReadGroup !== undefined && (master.sockMode & 0o002) === 0) {
    warnings.push(`sock_read_group '${master.sockReadGroup}': members outside sock_group cannot connect with sock_mode 0${master.sockMode.toString(8)}; ` +
      "use 0666 (every request is still checked against the groups)");
  }
  return warnings;
}
