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

/** Controllers the given interface files need (`memory.swap.max` → memory). */
export function controllersFor(files: Record<string, string>): string[] {
  return [...new Set(Object.keys(files).map((f) => f.split(".")[0]!))];
}
