/**
 * Running one readiness or liveness check: connect over TCP or a unix socket, GET a URL, run a
 * command in the service's cgroup as its user, or look for a line in its logs. Each resolves to
 * ok or not with a short detail, and never takes longer than its timeout.
 */
import fs from "node:fs";
import type { ProbeCheck, ServiceConfig } from "../config/types.ts";
import { errorMessage } from "../util/errors.ts";
import { execPlan } from "./exec.ts";
import { serviceEnv } from "./spawn.ts";
import { noteBunChild } from "../linux/reaper.ts";
import { withDirOf } from "../logs/safe-dir.ts";

export interface ProbeResult { ok: boolean; detail: string }

/** What a check is, for logs and status: `tcp 127.0.0.1:5432`. */
export function describeCheck(c: ProbeCheck): string {
  switch (c.kind) {
    case "tcp": return `tcp ${c.host.includes(":") ? `[${c.host}]` : c.host}:${c.port}`;
    case "http": return `http ${c.url}`;
    case "unix": return `unix ${c.path}`;
    case "exec": return `exec ${c.command.join(" ")}`;
    case "log": return `log /${c.pattern}/`;
    case "notify": return "notify";
  }
}

export interface ProbeContext {
  svc: ServiceConfig;
  /** The service's cgroup, for exec checks. */
  cgroupPath: string;
  timeoutMs: number;
  /** For log checks: what the run has written since it began. */
  logs: LogCursor | null;
}

export async function runProbe(check: ProbeCheck, ctx: ProbeContext): Promise<ProbeResult> {
  try {
    switch (check.kind) {
      case "tcp": return await connectProbe({ hostname: check.host, port: check.port }, ctx.timeoutMs);
      case "unix": return await connectProbe({ unix: check.path }, ctx.timeoutMs);
      case "http": return await httpProbe(check.url, ctx.timeoutMs);
      case "exec": return await execProbe(check.command, ctx);
      case "log": return ctx.logs?.seen(new RegExp(check.pattern)) ? { ok: true, detail: "line seen" } : { ok: false, detail: "no matching line yet" };
      case "notify": return { ok: false, detail: "waiting for READY=1" };
    }
  } catch (e) {
    return { ok: false, detail: errorMessage(e) };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<T>((resolve) => { timer = setTimeout(() => resolve(onTimeout()), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function connectProbe(target: { hostname: string; port: number } | { unix: string }, timeoutMs: number): Promise<ProbeResult> {
  let sock: { end(): void } | null = null;
  let timedOut = false;
  const attempt = (async (): Promise<ProbeResult> => {
    try {
      const s = await Bun.connect({ ...target, socket: { data() {}, error() {}, connectError() {} } } as Parameters<typeof Bun.connect>[0]);
      if (timedOut) s.end(); else sock = s;
      return { ok: true, detail: "connected" };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return { ok: false, detail: code === "ECONNREFUSED" ? "connection refused" : code === "ENOENT" ? "no socket there" : errorMessage(e) };
    }
  })();
  const r = await withTimeout(attempt, timeoutMs, () => { timedOut = true; return { ok: false, detail: `no connection within ${timeoutMs}ms` }; });
  (sock as { end(): void } | null)?.end();
  return r;
}

async function httpProbe(url: string, timeoutMs: number): Promise<ProbeResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
    void res.body?.cancel().catch(() => {});
    return res.status >= 200 && res.status < 300 ? { ok: true, detail: `HTTP ${res.status}` } : { ok: false, detail: `HTTP ${res.status}` };
  } catch (e) {
    const name = (e as Error).name;
    return { ok: false, detail: name === "TimeoutError" || name === "AbortError" ? `no answer within ${timeoutMs}ms` : errorMessage(e) };
  }
}

/**
 * The command runs as the service runs (its user, groups, environment, working directory) and in
 * its cgroup, so it sees what the service sees and counts against its limits. In a session of
 * its own, so that the whole process group goes at the timeout.
 */
async function execProbe(argv: string[], ctx: ProbeContext): Promise<ProbeResult> {
  const env = serviceEnv(ctx.svc);
  const plan = execPlan(ctx.svc, argv, env);
  const proc = Bun.spawn({
    cmd: plan.cmd, argv0: plan.argv0, cwd: ctx.svc.process.workingDirectory, env: plan.env, cgroup: ctx.cgroupPath, detached: true,
    stdin: "ignore", stdout: "ignore", stderr: "pipe",
    ...(plan.uid !== undefined ? { uid: plan.uid } : {}), ...(plan.gid !== undefined ? { gid: plan.gid } : {}),
  });
  noteBunChild(proc);
  const timer = setTimeout(() => { try { process.kill(-proc.pid, "SIGKILL"); } catch { /* gone */ } }, ctx.timeoutMs);
  try {
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text().catch(() => ""), proc.exited]);
    if (code === 0) return { ok: true, detail: "exit 0" };
    const line = stderr.trim().split("\n").pop()?.slice(0, 200) ?? "";
    if (proc.signalCode === "SIGKILL") return { ok: false, detail: `still running after ${ctx.timeoutMs}ms, killed` };
    return { ok: false, detail: `${proc.signalCode ? `killed by ${proc.signalCode}` : `exit ${code}`}${line ? `: ${line}` : ""}` };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What a run wrote to its log files since it began: the sizes are taken just before the spawn,
 * and each check reads on from there. Files are opened without following a symlink (the folder
 * may belong to the service's user) and must be regular files.
 */
export class LogCursor {
  private readonly files: { path: string; offset: number; carry: string }[];
  private matched = false;

  constructor(paths: string[]) {
    this.files = [...new Set(paths)].map((path) => ({ path, offset: sizeOf(path), carry: "" }));
  }

  seen(re: RegExp): boolean {
    if (this.matched) return true;
    for (const f of this.files) {
      let fd: number;
      const opened = openLogForReading(f.path);
      if (opened === null) continue;
      fd = opened;
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile() || st.nlink !== 1) continue;
        if (st.size < f.offset) { f.offset = 0; f.carry = ""; } // rotated or truncated meanwhile
        const want = Math.min(st.size - f.offset, 1 << 20);
        if (want <= 0) continue;
        const buf = Buffer.allocUnsafe(want);
        const n = fs.readSync(fd, buf, 0, want, f.offset);
        f.offset += n;
        const lines = (f.carry + buf.subarray(0, n).toString("utf8")).split("\n");
        f.carry = (lines.pop() ?? "").slice(-4096);
        // A last line without its newline yet counts too: a prompt like "ready> " may never get one.
        if ([...lines, f.carry].some((l) => re.test(l))) { this.matched = true; return true; }
      } catch { /* unreadable now: try again at the next check */ } finally { fs.closeSync(fd); }
    }
    return false;
  }
}

/**
 * A service's log file opened for reading through its verified folder (logs/safe-dir.ts): no
 * symlink in the file name or in a folder on the way that the service's user could have made,
 * O_NONBLOCK (a FIFO never hangs the daemon). Null when it cannot be opened that way.
 */
function openLogForReading(file: string): number | null {
  try { return withDirOf(file, false, (dir, name) => dir.open(name, fs.constants.O_RDONLY)); } catch { return null; }
}

function sizeOf(path: string): number {
  try { return fs.statSync(path).size; } catch { return 0; }
}

/**
 * The last `n` lines (of the last 4 KiB) of a service's log file, for a failed start's report.
 * Opened without following a symlink and only if it is a regular file: the daemon is root, the
 * folder may be the service user's, and the lines go to whoever asked.
 */
export function lastLines(path: string, n: number): string[] {
  let fd: number;
  const opened = openLogForReading(path);
  if (opened === null) return [];
  fd = opened;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1 || st.size === 0) return [];
    const len = Math.min(st.size, 4096);
    const buf = Buffer.allocUnsafe(len);
    const got = fs.readSync(fd, buf, 0, len, st.size - len);
    const lines = buf.subarray(0, got).toString("utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    if (st.size > len) lines.shift(); // the first may be cut
    return lines.slice(-n).map((l) => l.slice(0, 300));
  } catch { return []; } finally { fs.closeSync(fd); }
}
