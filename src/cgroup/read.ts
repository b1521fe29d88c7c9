/** Reading cgroup interface files and walking cgroup folders (tree.ts's helpers). */
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync, type Dirent } from "node:fs";
import { join } from "node:path";
import type { CgroupStats } from "./tree.ts";

export function readText(path: string): string | null {
  try { return readFileSync(path, "utf8"); } catch { return null; }
}

/** The words of a file like cgroup.subtree_control; empty when it cannot be read. */
export function readWords(path: string): Set<string> {
  return new Set((readText(path) ?? "").split(/\s+/).filter(Boolean));
}

/** PIDs of a cgroup (its cgroup.procs `text`, null when unreadable) and of every cgroup below it. */
export function readPidsRecursive(path: string, text: string | null): number[] {
  if (text === null) return [];
  const pids = text.split("\n").filter(Boolean).map(Number);
  // A folder's link count is 2 + its subfolders on cgroupfs (kernfs): with none, the common
  // case, a stat (~1 µs) replaces the readdir (~16 µs), per service and status (issue 6).
  // Any other count (btrfs says 1) still lists the folder.
  try { if (statSync(path).nlink === 2) return pids; } catch { return pids; }
  let entries: Dirent[] = [];
  try { entries = readdirSync(path, { withFileTypes: true }); } catch { /* gone */ }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const sub = join(path, e.name);
    pids.push(...readPidsRecursive(sub, readText(join(sub, "cgroup.procs"))));
  }
  return pids;
}

/** rmdir children first; false when some cgroup is still populated. */
export function removeTree(path: string): boolean {
  if (!existsSync(path)) return true;
  let ok = true;
  try {
    for (const e of readdirSync(path, { withFileTypes: true })) if (e.isDirectory()) ok = removeTree(join(path, e.name)) && ok;
    rmdirSync(path);
  } catch { return false; }
  return ok;
}

export const USAGE_USEC = /^usage_usec (\d+)$/m;
export const OOM_KILL = /^oom_kill (\d+)$/m;

export function readMemoryStats(path: string, want: { peak: boolean; ooms: boolean }): Omit<CgroupStats, "cpuUsageUsec"> {
  const num = (file: string) => { const t = readText(join(path, file)); return t === null ? null : Number(t.trim()) || 0; };
  const t = want.ooms ? readText(join(path, "memory.events")) : null;
  const m = t === null ? null : OOM_KILL.exec(t);
  return { memoryCurrent: num("memory.current"), memoryPeak: want.peak ? num("memory.peak") : null, oomKills: m ? Number(m[1]) : null };
}
