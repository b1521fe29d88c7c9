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
