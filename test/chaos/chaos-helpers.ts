/**
 * Shared tools of the chaos suite: a seeded random source (a failing round can be replayed),
 * latency statistics, process and cgroup inspection through /proc and cgroupfs.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** PM_CHAOS_LONG=1 runs the long variants (many rounds, more services). */
export const LONG = process.env.PM_CHAOS_LONG === "1";

/** A small seeded PRNG (mulberry32): the seed is printed so a failure can be replayed with PM_CHAOS_SEED. */
export function seededRandom(seed = Number(process.env.PM_CHAOS_SEED ?? Date.now() % 2 ** 31)) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    /** An integer in [lo, hi]. */
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    /** Each item with probability p. */
    subset: <T>(items: readonly T[], p: number): T[] => items.filter(() => next() < p),
  };
}

export interface LatencyStats { count: number; p50: number; p95: number; p99: number; max: number }

export function latencyStats(samples: number[]): LatencyStats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]!);
  return { count: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s.length ? s[s.length - 1]! : NaN };
}

export const fmtStats = (l: LatencyStats) =>
  `n=${l.count} p50=${l.p50.toFixed(1)}ms p95=${l.p95.toFixed(1)}ms p99=${l.p99.toFixed(1)}ms max=${l.max.toFixed(1)}ms`;

/** Resident memory of a process in KiB (VmRSS), null when it is gone. */
export function rssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

/** State letter and parent PID of a process from /proc/PID/stat, null when it is gone. */
export function procStat(pid: number): { state: string; ppid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch { return null; }
}

/** Every PID whose parent is `ppid`, with its state letter (Z = zombie). */
export function childrenOf(ppid: number): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st && st.ppid === ppid) out.push({ pid: Number(e), state: st.state });
  }
  return out;
}

/** PIDs in a cgroup and every cgroup below it. */
export function cgroupPidsDeep(path: string): number[] {
  let pids: number[] = [];
  try { pids = readFileSync(join(path, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number); } catch { return []; }
  try {
    for (const e of readdirSync(path, { withFileTypes: true })) if (e.isDirectory()) pids.push(...cgroupPidsDeep(join(path, e.name)));
  } catch { /* gone */ }
  return pids;
}

export function cgroupPopulated(path: string): boolean {
  try { return /^populated 1$/m.test(readFileSync(join(path, "cgroup.events"), "utf8")); } catch { return false; }
}

/** Service cgroups under a master cgroup that hold processes (the daemon's own leaf excluded). */
export function populatedServiceCgroups(master: string, daemonLeaf = "_daemon"): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let entries: import("node:fs").Dirent[] = [];
  try { entries = readdirSync(master, { withFileTypes: true }); } catch { return out; }
  for (const e of entries) {
    if (!e.isDirectory() || e.name === daemonLeaf) continue;
    const pids = cgroupPidsDeep(join(master, e.name));
    if (pids.length > 0) out.set(e.name, pids);
  }
  return out;
}

/** PIDs of every process on the host whose environment carries `CHAOS_TAG=tag`, in or out of any cgroup. */
export function taggedProcesses(tag: string): number[] {
  const needle = `CHAOS_TAG=${tag}\0`;
  const found: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try { if (readFileSync(`/proc/${e}/environ`, "latin1").includes(needle) && procStat(Number(e))?.state !== "Z") found.push(Number(e)); } catch { /* gone */ }
  }
  return found;
}


/** `promise`, or a clear failure once `ms` have passed (a hung request fails fast, not at the test timeout). */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms}ms`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
