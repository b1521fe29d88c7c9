/**
 * Service names → cgroup directory names. A name the kernel could use for an interface file
 * (`cgroup.*`, `cpu.*`, `memory.*`, …) is prefixed with `_`, as systemd does; names already
 * starting with `_` are prefixed too, so the mapping can be reversed. The kernel never makes a
 * file starting with `_`, so `_daemon`, the daemon's own leaf, never clashes with a service.
 */
const KERNEL_PREFIXES = ["cgroup.", "cpu.", "cpuset.", "cpuacct.", "memory.", "io.", "pids.", "rdma.", "hugetlb.", "misc.", "freezer.", "blkio.", "devices.", "net_cls.", "net_prio.", "perf_event."];

export const DAEMON_LEAF = "_daemon";

export function cgroupDirName(service: string): string {
  if (service.startsWith("_") || KERNEL_PREFIXES.some((p) => service.startsWith(p))) return `_${service}`;
  return service;
}

/** The service name for a directory under the master cgroup, or null for the daemon's leaf. */
export function serviceNameOf(dirName: string): string | null {
  if (dirName === DAEMON_LEAF) return null;
  return dirName.startsWith("_") ? dirName.slice(1) : dirName;
}
