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

/** What runs in a helper cgroup beside a service's: its stop_command or its reload_command. */
export type HelperKind = "stop" | "reload";
export const HELPER_PREFIXES: readonly string[] = ["_stop-", "_reload-"];

/** The cgroup a service's stop_command (reload_command) runs in, a sibling of the service's: `_stop-NAME` (`_reload-NAME`). */
export function helperCgroupDirName(kind: HelperKind, service: string): string {
  return `_${kind}-${service}`;
}

/**
 * The service name for a directory under the master cgroup, or null for one that is not a
 * service's (the daemon's leaf, a stop_command's cgroup: no service name encodes to them).
 */
export function serviceNameOf(dirName: string): string | null {
  const name = dirName.startsWith("_") ? dirName.slice(1) : dirName;
  return cgroupDirName(name) === dirName ? name : null;
}
