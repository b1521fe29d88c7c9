/** Finding the cgroup2 hierarchy: never assumed at /sys/fs/cgroup (hybrid hosts mount it elsewhere). */
import { readFileSync } from "node:fs";
import { PmError } from "../util/errors.ts";

/** Mount point of the cgroup2 file system from a mountinfo text, or null. */
export function parseCgroup2Mount(mountinfo: string): string | null {
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const fsType = line.slice(sep + 3).split(" ")[0];
    if (fsType !== "cgroup2") continue;
    const mountPoint = line.slice(0, sep).split(" ")[4];
    if (mountPoint) return mountPoint.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  }
  return null;
}

export function findCgroup2Mount(): string {
  const mount = parseCgroup2Mount(readFileSync("/proc/self/mountinfo", "utf8"));
  if (!mount) {
    throw new PmError("CGROUP_UNAVAILABLE",
      "no cgroup2 file system is mounted (looked in /proc/self/mountinfo); mount one with `mount -t cgroup2 none /sys/fs/cgroup` or set cgroup_root in the master config");
  }
  return mount;
}

/** The unified-hierarchy path of a `/proc/PID/cgroup` text (`0::/a/b` → `/a/b`), or null. */
export function parseOwnCgroup(procCgroup: string): string | null {
  const line = procCgroup.split("\n").find((l) => l.startsWith("0::"));
  return line ? line.slice(3) : null;
}

/** The root (field 4) of the cgroup2 mount in a mountinfo text: "/" unless a subtree is mounted. */
function cgroup2MountRoot(mountinfo: string): string {
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep >= 0 && line.slice(sep + 3).startsWith("cgroup2 ")) return line.split(" ")[3] ?? "/";
  }
  return "/";
}

export interface CgroupRootChoice {
  path: string;
  why: string;
  /** The daemon was started in this very cgroup (not in a `_daemon` leaf below it, not the mount's root). */
  startedHere: boolean;
}

/**
 * Where the master cgroup goes when `cgroup_root` is not set: the daemon's own cgroup when that
 * is not the root cgroup (systemd's `Delegate=yes` gives the service a subtree, and a daemon may
 * create and write cgroups only inside it), else the cgroup2 mount (a bare host, a container with
 * its own cgroup namespace). A daemon started in a `_daemon` leaf finds the tree above it.
 */
export function defaultCgroupRoot(cgroupName: string, daemonLeaf: string,
  read: (path: string) => string = (p) => readFileSync(p, "utf8")): CgroupRootChoice {
  const mountinfo = read("/proc/self/mountinfo");
  const mount = parseCgroup2Mount(mountinfo);
  if (!mount) return { path: findCgroup2Mount(), why: "", startedHere: false };
  let own = parseOwnCgroup(read("/proc/self/cgroup")) ?? "/";
  let inLeaf = true;
  // Started in a `_daemon` leaf: its own (re-exec, a restart from there), or the one systemd's
  // `DelegateSubgroup=_daemon` starts the unit's process in (a unit's cgroup that has controllers
  // enabled for its children may hold no process, so a restarted daemon cannot go there).
  const leaf = `/${cgroupName}/${daemonLeaf}`;
  if (own.endsWith(leaf)) own = own.slice(0, -leaf.length) || "/";
  else if (own.endsWith(`/${daemonLeaf}`)) own = own.slice(0, -daemonLeaf.length - 1) || "/";
  else inLeaf = false;
  const mountRoot = cgroup2MountRoot(mountinfo);
  if (mountRoot !== "/" && (own === mountRoot || own.startsWith(mountRoot + "/"))) own = own.slice(mountRoot.length) || "/";
  if (own === "/") return { path: mount, why: "the cgroup2 mount (the daemon runs in the root cgroup)", startedHere: false };
  const path = mount.replace(/\/$/, "") + own;
  try { read(path + "/cgroup.procs"); } catch {
    return { path: mount, why: `the cgroup2 mount (the daemon's own cgroup ${own} is not visible under ${mount})`, startedHere: false };
  }
  return { path, why: `the daemon's own cgroup ${own} (as under systemd's Delegate=yes; set cgroup_root to choose another)`, startedHere: !inLeaf };
}

/**
 * A daemon started in its cgroup_root itself (systemd before 254 ignores the unit's
 * `DelegateSubgroup=_daemon` and starts it in the unit's cgroup) moves into its own leaf, and the
 * limits then enable controllers for the root's children. From then on no process may join the
 * root (the kernel's no-internal-process rule): systemd cannot start the next daemon there, and
 * `systemctl restart` fails with status=219/CGROUP while the services run. Says so, once
 * controllers are enabled there; null when the daemon started in a `_daemon` leaf, at the mount's
 * root or with cgroup_root set, or while the root's cgroup.subtree_control is empty.
 */
export function startedInRootWarning(choice: CgroupRootChoice, rootSubtreeControl: Iterable<string>): string | null {
  const enabled = [...rootSubtreeControl];
  if (!choice.startedHere || enabled.length === 0) return null;
  return `the daemon was started in ${choice.path} itself, its default cgroup_root, and limits enabled controllers (${enabled.join(" ")}) for that cgroup's children: ` +
    "no process may join it now, so the next daemon cannot be started there (systemctl restart fails with status=219/CGROUP while services run). " +
    "Under systemd 254 or later keep DelegateSubgroup=_daemon in the unit; with an older systemd (it ignores that line) set cgroup_root: /sys/fs/cgroup in the master config " +
    "(README, \"Install on a host\")";
}
