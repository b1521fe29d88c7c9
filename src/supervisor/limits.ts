/** Config limits → cgroup interface files (values are already in kernel form). */
import type { MasterConfig, ResourcesConfig } from "../config/types.ts";

export function resourceLimitFiles(r: ResourcesConfig): Record<string, string> {
  const files: Record<string, string> = {};
  if (r.cpuMax !== undefined) files["cpu.max"] = r.cpuMax;
  if (r.cpuWeight !== undefined) files["cpu.weight"] = String(r.cpuWeight);
  if (r.memoryMax !== undefined) files["memory.max"] = r.memoryMax;
  if (r.memoryHigh !== undefined) files["memory.high"] = r.memoryHigh;
  if (r.memorySwapMax !== undefined) files["memory.swap.max"] = r.memorySwapMax;
  if (r.pidsMax !== undefined) files["pids.max"] = r.pidsMax;
  return files;
}

export function masterLimitFiles(m: MasterConfig): Record<string, string> {
  const files: Record<string, string> = {};
  if (m.cgroupCpuMax !== undefined) files["cpu.max"] = m.cgroupCpuMax;
  if (m.cgroupMemoryMax !== undefined) files["memory.max"] = m.cgroupMemoryMax;
  if (m.cgroupMemorySwapMax !== undefined) files["memory.swap.max"] = m.cgroupMemorySwapMax;
  return files;
}

/** What the kernel puts in each limit file of a new cgroup: "no limit". */
export const KERNEL_DEFAULTS: Readonly<Record<string, string>> = {
  "cpu.max": "max 100000",
  "cpu.weight": "100",
  "memory.max": "max",
  "memory.high": "max",
  "memory.swap.max": "max",
  "pids.max": "max",
};

/**
 * The files to write when a running cgroup's limits change from `before` to `after`: every
 * file of `after`, plus the kernel default for each file `before` set and `after` no longer
 * does (a limit removed from the config must stop being in force without a restart).
 */
export function limitChanges(before: Record<string, string>, after: Record<string, string>): Record<string, string> {
  const files = { ...after };
  for (const file of Object.keys(before)) {
    if (!(file in after) && KERNEL_DEFAULTS[file] !== undefined) files[file] = KERNEL_DEFAULTS[file]!;
  }
  return files;
}

/** Controllers the given interface files need (`memory.swap.max` → memory). */
export function controllersFor(files: Record<string, string>): string[] {
  return [...new Set(Object.keys(files).map((f) => f.split(".")[0]!))];
}
