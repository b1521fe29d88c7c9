/**
 * Reaping orphans. When the daemon is PID 1 of a PID namespace (a container, `unshare --pid`)
 * every orphaned process in it is reparented to the daemon; when it exits it stays a zombie
 * until the daemon reaps it. Bun reaps only the children it spawned, and the PidWatcher only
 * the orphans whose pidfd it happened to watch: a service that double-forks a short-lived
 * helper would leave zombies behind.
 *
 * On each SIGCHLD (Bun delivers `process.on("SIGCHLD")`; signals coalesce, so one scan reaps
 * all that are due) we list our zombie children in /proc and reap each one by PID with
 * waitid(P_PID). Never waitid(P_ALL): that would steal the exit status of Bun's own children
 * and break `proc.exited`; those are skipped by PID (see `noteBunChild`).
 * /proc/PID/task/TID/children would be cheaper but needs CONFIG_PROC_CHILDREN, which many
 * kernels lack; in a PID namespace /proc lists only the namespace's processes anyway.
 */
import { readdirSync } from "node:fs";
import { ERRNO, waitPid } from "./ffi.ts";
import { readProcStat } from "./proc-stat.ts";
import { isPmError } from "../util/errors.ts";

/** PIDs that Bun spawned and reaps itself, until their exit has been collected. */
const bunChildren = new Set<number>();

/** Marks a process spawned by Bun.spawn as Bun's to reap. Call right after the spawn. */
export function noteBunChild(proc: { pid: number; exited: Promise<unknown> }): void {
  bunChildren.add(proc.pid);
  proc.exited.then(() => bunChildren.delete(proc.pid), () => bunChildren.delete(proc.pid));
}

/** Zombie processes whose parent is `parent`, from /proc/PID/stat (state Z). */
export function zombieChildren(parent = process.pid): number[] {
  const out: number[] = [];
  let entries: string[];
  try { entries = readdirSync("/proc"); } catch { return out; }
  for (const name of entries) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue; // not a PID directory
    const stat = readProcStat(Number(name)); // null: exited meanwhile
    if (stat?.state === "Z" && stat.ppid === parent) out.push(Number(name));
  }
  return out;
}

/** Reaps every zombie child that is not Bun's own; returns the PIDs reaped. */
export function reapOrphans(): number[] {
  const reaped: number[] = [];
  for (const pid of zombieChildren()) {
    if (bunChildren.has(pid)) continue;
    try {
      if (waitPid(pid)) reaped.push(pid);
    } catch (e) {
      // ECHILD: someone else (the PidWatcher's waitid on a pidfd) reaped it first.
      if (!isPmError(e) || e.errno !== ERRNO.ECHILD) throw e;
    }
  }
  return reaped;
}

/** Reaps orphans on every SIGCHLD, batched to one /proc scan per event-loop turn. */
export class OrphanReaper {
  private scheduled = false;
  private readonly onSignal = () => this.schedule();
  /** Orphans reaped so far (for logs and tests). */
  reapedCount = 0;

  constructor(private readonly onError: (e: unknown) => void = () => {}) {}

  start(): void {
    process.on("SIGCHLD", this.onSignal);
    this.schedule(); // zombies that exited before the handler was in place
  }

  stop(): void {
    process.off("SIGCHLD", this.onSignal);
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try { this.reapedCount += reapOrphans().length; } catch (e) { this.onError(e); }
    });
  }
}
