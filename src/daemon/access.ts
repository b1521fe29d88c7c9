/**
 * Who may do what over the control socket. Reading (ping, status) needs only a connection,
 * which the socket's mode/owner/group already guard. Changing anything needs root, the
 * daemon's own uid, or membership of `sock_group` (primary or supplementary, read from
 * /proc/PID/status of the peer).
 */
import { readFileSync } from "node:fs";
import type { MasterConfig } from "../config/types.ts";
import { resolveGroup, resolveUser } from "../config/load.ts";
import { MUTATING, type Request } from "../control/protocol.ts";
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
  const groups = new Set([peer.gid]);
  try {
    const status = readFileSync(`/proc/${peer.pid}/status`, "utf8");
    const line = /^Groups:\s*(.*)$/m.exec(status);
    for (const g of (line?.[1] ?? "").split(/\s+/).filter(Boolean)) groups.add(Number(g));
  } catch { /* the client already exited: primary group only */ }
  return groups;
}

export function authorize(req: Request, peer: PeerCred | null, master: MasterConfig): void {
  if (!MUTATING.has(req.cmd)) return;
  if (peer === null) throw new PmError("PERMISSION", `${req.cmd}: cannot identify the client (SO_PEERCRED failed); refused`);
  if (peer.uid === 0 || peer.uid === process.getuid?.()) return;
  if (master.sockGroup !== undefined) {
    const gid = resolveGroup(master.sockGroup)?.gid;
    if (gid !== undefined && peerGroups(peer).has(gid)) return;
  }
  throw new PmError("PERMISSION", `${req.cmd}: uid ${peer.uid} may only read; changing services needs root${master.sockGroup ? ` or membership of group '${master.sockGroup}'` : ""}`);
}
