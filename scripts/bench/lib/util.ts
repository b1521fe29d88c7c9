/**
 * Small helpers for the benchmark harness: statistics, wall time, process probes read from
 * /proc (CPU ticks, context switches of every thread, RSS), waiting, running a command.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeSync } from "node:fs";

export const now = () => performance.now();
/** Wall-clock time in ms with sub-ms precision (same clock as Perl's Time::HiRes::time). */
export const wallMs = () => performance.timeOrigin + performance.now();
export const sleep = (ms: number) => Bun.sleep(ms);

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile. */
export function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function summary(xs: number[], digits = 2) {
  const r = (v: number | null) => (v === null ? null : Number(v.toFixed(digits)));
  return {
    n: xs.length,
    median: r(median(xs)),
    p95: r(percentile(xs, 95)),
    min: r(xs.length ? Math.min(...xs) : null),
    max: r(xs.length ? Math.max(...xs) : null),
  };
}
export type Summary = ReturnType<typeof summary>;

export function readText(path: string): string | null {
  try { return readFileSync(path, "utf8"); } catch { return null; }
}

/** Alive and not a zombie. */
export function pidAlive(pid: number): boolean {
  if (!(pid > 0)) return false;
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === null) return false;
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

export const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

export interface ProcSample {
  at: number;
  /** utime + stime of the whole process (all threads, dead ones included), ms. */
  cpuMs: number;
  /** Sum over live threads of voluntary / involuntary context switches. */
  voluntary: number;
  nonvoluntary: number;
  rssKb: number;
  /** Private anonymous memory, and pages of mapped files (the runtime's own binary mostly). */
  rssAnonKb: number;
  rssFileKb: number;
  threads: Record<string, { name: string; voluntary: number; nonvoluntary: number }>;
}

export function sampleProc(pid: number): ProcSample | null {
  const stat = readText(`/proc/${pid}/stat`);
  const status = readText(`/proc/${pid}/status`);
  if (stat === null || status === null) return null;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields after the comm: state(3) … utime(14) stime(15); index = field - 3
  const cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const rssAnonKb = Number(/^RssAnon:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const rssFileKb = Number(/^RssFile:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const threads: ProcSample["threads"] = {};
  let voluntary = 0, nonvoluntary = 0;
  let tids: string[] = [];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { /* gone */ }
  for (const tid of tids) {
    const st = readText(`/proc/${pid}/task/${tid}/status`);
    if (!st) continue;
    const v = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
    const nv = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
    const name = /^Name:\s+(.*)$/m.exec(st)?.[1] ?? "?";
    threads[tid] = { name, voluntary: v, nonvoluntary: nv };
    voluntary += v; nonvoluntary += nv;
  }
  return { at: now(), cpuMs, voluntary, nonvoluntary, rssKb, rssAnonKb, rssFileKb, threads };
}

/** What happened between two samples of the same process. */
export function procDelta(a: ProcSample, b: ProcSample) {
  const seconds = (b.at - a.at) / 1000;
  // Per thread: a thread born in the window counts all its switches; one that ended in it is
  // lost to /proc (counted in threadsEnded, so a reader knows the figure is a floor).
  const perThread: { tid: string; name: string; switches: number }[] = [];
  let voluntary = 0, nonvoluntary = 0;
  for (const [tid, t] of Object.entries(b.threads)) {
    const before = a.threads[tid];
    const v = t.voluntary - (before?.voluntary ?? 0);
    const nv = t.nonvoluntary - (before?.nonvoluntary ?? 0);
    voluntary += v; nonvoluntary += nv;
    if (v + nv > 0) perThread.push({ tid, name: t.name, switches: v + nv });
  }
  perThread.sort((x, y) => y.switches - x.switches);
  const threadsStarted = Object.keys(b.threads).filter((t) => !a.threads[t]).length;
  const threadsEnded = Object.keys(a.threads).filter((t) => !b.threads[t]).length;
  return {
    seconds: Number(seconds.toFixed(2)),
    cpuMs: Number((b.cpuMs - a.cpuMs).toFixed(1)),
    voluntary, nonvoluntary,
    wakeupsPerSec: Number(((voluntary + nonvoluntary) / seconds).toFixed(3)),
    threadsStarted, threadsEnded,
    busyThreads: perThread.slice(0, 8),
  };
}

export async function waitUntil<T>(check: () => T | Promise<T>, what: string, timeoutMs: number, everyMs = 20): Promise<NonNullable<Awaited<T>>> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<Awaited<T>>;
    if (now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs)} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface RunResult { code: number; stdout: string; stderr: string; ms: number }

/** Runs a command to its end; `ms` is spawn-to-exit wall time. */
export async function run(cmd: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const t0 = now();
  const proc = Bun.spawn({ cmd, env: opts.env as Record<string, string> | undefined, cwd: opts.cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = opts.timeoutMs ? setTimeout(() => { try { proc.kill("SIGKILL"); } catch { /* gone */ } }, opts.timeoutMs) : null;
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const ms = now() - t0;
  if (timer) clearTimeout(timer);
  return { code, stdout, stderr, ms };
}

/** Runs a command that must succeed. */
export async function must(cmd: string[], opts: Parameters<typeof run>[1] = {}): Promise<RunResult> {
  const r = await run(cmd, opts);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} exited with ${r.code}: ${(r.stderr || r.stdout).trim().slice(-800)}`);
  return r;
}

export function log(msg: string) {
  // writeSync and no throw: a closed stderr (`| head`) must not end the run before its cleanup.
  try { writeSync(2, `[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`); } catch { /* nobody reads */ }
}

export function loadavg(): number[] {
  return (readText("/proc/loadavg") ?? "0 0 0").split(" ").slice(0, 3).map(Number);
}

/**
 * Whether `pattern` has appeared in a growing file, reading only what was appended since the
 * last call: waiting for a line in the log of a daemon that boots 5000 services must not read
 * megabytes every few milliseconds on the cores the daemon needs.
 */
export function appendedMatcher(path: string, pattern: RegExp): () => boolean {
  let offset = 0, carry = "";
  const buf = Buffer.alloc(1 << 16);
  return () => {
    let fd: number;
    try { fd = openSync(path, "r"); } catch { return false; }
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) return false;
        offset += n;
        const text = carry + buf.toString("latin1", 0, n);
        if (pattern.test(text)) return true;
        carry = text.slice(-256); // a match split across two reads
      }
    } finally { closeSync(fd); }
  };
}
